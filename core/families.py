"""The method-family registry: the one place that says which methods exist, and for each its
:class:`~thbench.core.method.Method`, its trainer, the checkpoint file its training exports and
what the ``animate`` command offers for it.

Everything is named lazily, ``"module:attribute"`` as the metric registry does, so reading the
registry imports no model code (face-vid2vid's or HiDe-NeRF's dependencies load only for the
method that is built). The benchmark, the ``train`` and ``animate`` commands and the profilers
read this module and nothing else.

Methods of other packages join without editing this repository, either way:

- an installed package declares an entry point in the group ``thbench.methods``: the name is
  the method's, the value a :class:`Method` subclass or a :class:`Family` (to declare a trainer
  as well), e.g. in its ``pyproject.toml``::

      [project.entry-points."thbench.methods"]
      my-method = "my_package.method:MyMethod"

- a run config names the class itself: ``[[methods]] name = "my_package.method:MyMethod"``.

Entry points are read by name only; one is imported when its method is asked for, so a package
that fails to import costs only its own method (``thbench methods`` lists it with the error).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from thbench.core.cli import one_line
from thbench.core.method import Method

ENTRY_POINT_GROUP = "thbench.methods"


@dataclass(frozen=True)
class Family:
    """One method family; the strings are ``"module:attribute"`` and load on first use."""

    name: str
    """The method's name in configs, and its folder under each run's ``outputs/``."""
    method: str
    """The :class:`Method` subclass."""
    trainer: str = ""
    """``train(config, *, resume, stop_at, distributed) -> Path`` for training configs of
    ``family = <name>`` (it reports through :mod:`logging`); empty: the family is not trainable
    here."""
    exported: str = ""
    """The checkpoint file a finished training run exports, in the run folder: what the
    benchmark passes as the method's ``checkpoint`` option."""
    animate_options: tuple[str, ...] = ()
    """The ``animate`` command's family-specific options it accepts: ``mode`` (motion transfer)
    and ``yaw``/``pitch``/``roll`` (free view)."""
    training_assets: tuple[str, ...] = ()
    """Assets its training needs beyond the loss networks (the pre-flight check names them)."""

    def method_class(self) -> type[Method]:
        """The Method subclass, imported now: an import failure is a ValueError naming the
        exception type and its message."""
        cls = load(self.method)
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"method {self.name!r}: {self.method} is not a Method subclass")
        return cls

    def train_function(self):
        if not self.trainer:
            raise ValueError(f"method {self.name!r} has no trainer")
        return load(self.trainer)


_WARPING_TRAINER = "thbench.baselines.train:train"
BUILT_IN = (
    Family("source-copy", "thbench.baselines.reference:SourceCopy"),
    Family("driving-copy", "thbench.baselines.reference:DrivingCopy"),
    Family("fomm", "thbench.baselines.fomm:FOMM", _WARPING_TRAINER, "checkpoint.pth.tar",
           ("mode",)),
    Family("tpsmm", "thbench.baselines.tpsmm:TPSMM", _WARPING_TRAINER, "checkpoint.pth.tar",
           ("mode",)),
    Family("fv2v", "thbench.baselines.fv2v:FaceVid2Vid", _WARPING_TRAINER, "checkpoint.pth.tar",
           ("mode", "yaw", "pitch", "roll")),
    Family("hidenerf", "thbench.hidenerf.method:HiDeNeRFMethod", "thbench.hidenerf.train:train",
           "model.pt", ("yaw", "pitch", "roll"),
           training_assets=("sfm_shape", "sfm_expression", "sfm_ibug_mapping",
                            "sfm_edge_topology", "sfm_contours")),
)


def load(spec: str) -> Any:
    """The object ``"package.module:attribute"`` names (imported now)."""
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"{spec!r} is not 'package.module:attribute'")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ValueError(f"{spec}: module {error.name} not found") from None
    except Exception as error:  # a module that fails while importing: its own bug
        raise ValueError(f"{spec}: {type(error).__name__} while importing {module}: "
                         f"{one_line(error)}") from error
    try:
        return getattr(loaded, attribute)
    except AttributeError:
        raise ValueError(f"{spec}: module {module} has no {attribute!r}") from None


class PluginError(ValueError):
    """An installed package's entry point that cannot be used (it fails to import, names no
    Method, or takes a name already taken): the one method fails, nothing else."""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    """The ``thbench.methods`` entry points by name, none of them imported."""
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def _distribution(point: EntryPoint) -> str:
    return point.dist.name if point.dist is not None else "an installed package"


@cache
def _plugin(name: str) -> Family:
    """The family an entry point declares, imported now (and once): its package's failure to
    import is a :class:`PluginError` naming the package, the exception type and its message."""
    point = _entry_points()[name]
    where = f"plug-in {name!r} ({point.value}, from {_distribution(point)})"
    if name in {f.name for f in BUILT_IN}:
        raise PluginError(f"{where}: the name is taken by a built-in method")
    try:
        target = point.load()
    except Exception as error:  # a third-party package's import failure is its own
        raise PluginError(f"{where}: {type(error).__name__}: {one_line(error)}") from error
    if isinstance(target, Family):
        return target
    if not (isinstance(target, type) and issubclass(target, Method)):
        raise PluginError(f"{where}: not a Method subclass or a Family")
    return Family(name, point.value)


def plugin_names() -> list[str]:
    """Names the installed packages declare (nothing is imported)."""
    return sorted(_entry_points())


def family(name: str) -> Family:
    """A family by its name, or by ``"package.module:Class"`` (a Method class of any
    package); a clear error lists the known names."""
    if ":" in name:
        return Family(name, name)
    for entry in BUILT_IN:
        if entry.name == name:
            return entry
    if name in _entry_points():
        return _plugin(name)
    close = difflib.get_close_matches(name, available(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise KeyError(f"unknown method {name!r}{hint}; known: {', '.join(available())} "
                   "(or 'package.module:Class'; `thbench methods` lists them)")


def keyword_options(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword options ``cls(...)`` names, from every ``__init__`` on its MRO (a subclass
    passes the rest on), less ``self``; and whether one of them also takes ``**kwargs`` (then
    a name outside the list cannot be refused)."""
    options: dict[str, inspect.Parameter] = {}
    open_ended = False
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        for parameter in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif parameter.name != "self" and parameter.kind is not parameter.VAR_POSITIONAL:
                options.setdefault(parameter.name, parameter)
    return options, open_ended


def plugin_origin(name: str) -> str:
    """Where a plug-in method comes from: ``"plug-in (package 1.0)"``; empty for others."""
    point = _entry_points().get(name)
    if point is None:
        return ""
    version = f" {point.dist.version}" if point.dist is not None else ""
    return f"plug-in ({_distribution(point)}{version})"


def available() -> list[str]:
    """Every method name, built-in and declared by installed packages (none imported)."""
    return sorted({f.name for f in BUILT_IN} | set(_entry_points()))


def trainable() -> list[str]:
    """The built-in families with a trainer (a plug-in's is known once it is loaded)."""
    return sorted(f.name for f in BUILT_IN if f.trainer)


def method_class(name: str) -> type[Method]:
    return family(name).method_class()


def build(name: str, **kwargs) -> Method:
    """Construct a method by name (or ``"package.module:Class"``)."""
    return method_class(name)(**kwargs)
