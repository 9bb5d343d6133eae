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
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

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
    """``train(config, *, resume, stop_at, distributed, log) -> Path`` for training configs of
    ``family = <name>``; empty: the family is not trainable here."""
    exported: str = ""
    """The checkpoint file a finished training run exports, in the run folder: what the
    benchmark passes as the method's ``checkpoint`` option."""
    animate_options: tuple[str, ...] = ()
    """The ``animate`` command's family-specific options it accepts: ``mode`` (motion transfer)
    and ``yaw``/``pitch``/``roll`` (free view)."""
    training_assets: tuple[str, ...] = ()
    """Assets its training needs beyond the loss networks (the pre-flight check names them)."""

    def method_class(self) -> type[Method]:
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
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as error:
        raise ValueError(f"{spec}: module {error.name} not found") from None
    except AttributeError:
        raise ValueError(f"{spec}: module {module} has no {attribute!r}") from None


@cache
def families() -> dict[str, Family]:
    """Every family: the built-in ones, then those installed packages declare."""
    found = {f.name: f for f in BUILT_IN}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            raise ValueError(f"entry point {point.name!r} ({point.value}) of group "
                             f"{ENTRY_POINT_GROUP!r}: the name is taken")
        target = point.load()
        found[point.name] = (target if isinstance(target, Family)
                             else Family(point.name, point.value))
    return found


def family(name: str) -> Family:
    """A family by its name, or by ``"package.module:Class"`` (a Method class of any
    package); a clear error lists the known names."""
    if ":" in name:
        return Family(name, name)
    known = families()
    if name not in known:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(available())} "
                       "(or 'package.module:Class')")
    return known[name]


def available() -> list[str]:
    return sorted(families())


def trainable() -> list[str]:
    return sorted(name for name, f in families().items() if f.trainer)


def method_class(name: str) -> type[Method]:
    return family(name).method_class()


def build(name: str, **kwargs) -> Method:
    """Construct a method by name (or ``"package.module:Class"``)."""
    return method_class(name)(**kwargs)
