"""Reading a TOML config file into typed dataclasses, with one-line errors that say where.

:func:`from_table` checks every key of every table against the dataclass's fields and every
value against the field's type annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``,
``list[...]``, ``tuple[...]``, ``dict[...]``, ``Literal[...]``, nested dataclasses), before any
object is built. A field's ``metadata`` may add ``choices`` (the allowed values, or those of a
list's items) and ``path`` (a relative path in the file is resolved against the file's folder;
one given on the command line stays relative to the current directory).

Errors name the file and line (``configs/x.toml:12: ...``) or the ``--set`` flag the value came
from, and an unknown key or choice gets a did-you-mean from :mod:`difflib`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

Key = tuple[str | int, ...]
"""A value's place in the config: ``("dataset", "root")``, ``("methods", 2, "label")``."""

T = TypeVar("T")


def read_table(path: str | os.PathLike, what: str, **overrides) -> dict:
    """The file's top-level table; ``overrides`` replace top-level keys (None: keep)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise FileNotFoundError(f"{path}: {what} is a folder, not a file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: invalid TOML ({error})") from None
    table.update({k: v for k, v in overrides.items() if v is not None})
    return table


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class Source:
    """Where a config's values came from: its file (for line numbers and relative paths), the
    ``--set`` flags (by the key each one set) and other command-line options."""

    path: Path | None = None
    flags: dict[Key, str] = field(default_factory=dict)
    """Key -> the flag that set it, as typed: ``"--set batch_size=eight"``."""
    resolve_paths: bool = True
    """False for a saved record, whose paths were resolved when it was written."""
    _lines: list[str] | None = None

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def flag(self, key: Key) -> str:
        """The flag that set ``key`` or a table above it, else an empty string."""
        for n in range(len(key), 0, -1):
            if key[:n] in self.flags:
                return self.flags[key[:n]]
        return ""

    def where(self, key: Key) -> str:
        flag = self.flag(key)
        if flag:
            return flag
        if self.path is None:
            return ""
        if self._lines is None:
            try:
                self._lines = self.path.read_text().splitlines()
            except OSError:
                self._lines = []
        line = line_of(self._lines, key)
        return f"{self.path}:{line}" if line else str(self.path)

    def error(self, key: Key, message: str) -> ValueError:
        where = self.where(key)
        return ValueError(f"{where}: {message}" if where else message)

    def resolve(self, value: str, key: Key) -> str:
        """A path from the file, relative to the file's folder; others as given."""
        if (not value or not self.resolve_paths or self.folder is None or self.flag(key)
                or os.path.isabs(value) or value.startswith("~")):
            return value
        return os.path.normpath(self.folder / value)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def line_of(lines: list[str], key: Key) -> int:
    """The 1-based line that sets ``key`` (or the nearest table above it); 0 if not found.
    Table headers and ``[[array]]`` items are followed, keys inside inline tables are found at
    their table's line."""
    best, best_length = 0, 0
    table: tuple[str | int, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header:
            names = _dotted(header.group(2))
            if header.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                table = (*names, counts[names])
            else:
                table = names
            here = table
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            here = (*table, *_dotted(assign.group(1)))
        length = len(here)
        if length > best_length and key[:length] == here:
            best, best_length = number, length
    return best


def _name(key: Key) -> str:
    """``dataset.root``, ``methods[2].label``: a key as a reader writes it."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the config"


def _table(key: Key) -> str:
    return f"[{_name(key)}]" if key else "the top level"


def from_table(cls: type[T], table: Any, source: Source | None = None, key: Key = ()) -> T:
    """``cls(**table)`` after checking every key and value against ``cls``'s fields (see the
    module docstring); any problem is a ValueError that names where it came from."""
    source = source or Source()
    if not isinstance(table, dict):
        raise source.error(key, f"{_name(key)} must be a table, not {table!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(typing.cast(Any, cls))
             if f.init and not f.name.startswith("_")}
    values = {}
    for name, value in table.items():
        if name not in known:
            raise source.error((*key, name), f"unknown key {name!r} in {_table(key)}"
                                             f"{did_you_mean(name, known)}; known: "
                                             f"{', '.join(known)}")
        values[name] = check_value(value, hints[name], source, (*key, name),
                                   known[name].metadata)
    missing = [n for n, f in known.items() if n not in table
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise source.error(key, f"{_table(key)} needs {missing[0]!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise source.error(key, f"{_table(key)}: {message}") from None


def _kind(hint: Any) -> str:
    """A type annotation in words, for errors."""
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             dict: "a table", list: "an array"}
    if hint in words:
        return words[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"an array of {len(args)} ({', '.join(_kind(a) for a in args)})"
        return f"an array of {_kind(args[0]).removeprefix('an ').removeprefix('a ')}s" \
            if args else "an array"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return getattr(hint, "__name__", str(hint))


def check_value(value: Any, hint: Any, source: Source, key: Key,
                metadata: typing.Mapping[str, Any] | None = None) -> Any:
    """``value`` checked against the annotation ``hint`` (and ``metadata``'s ``choices`` and
    ``path``), converted where TOML's type differs (int -> float, array -> tuple)."""
    metadata = metadata or {}

    def wrong() -> ValueError:
        return source.error(key, f"{_name(key)} must be {_kind(hint)}, not {value!r}")

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        checked = value
    elif origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                checked = check_value(value, option, source, key)
                break
            except ValueError:
                continue
        else:
            raise wrong()
    elif dataclasses.is_dataclass(hint):
        return from_table(typing.cast(type, hint), value, source, key)
    elif hint is bool:
        if not isinstance(value, bool):
            raise wrong()
        checked = value
    elif hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong()
        checked = value
    elif hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise wrong()
        checked = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise wrong()
        checked = source.resolve(value, key) if metadata.get("path") else value
    elif origin is Literal:
        if value not in args:
            raise source.error(key, f"{_name(key)} = {value!r}: expected one of "
                                    f"{', '.join(map(repr, args))}"
                                    f"{did_you_mean(str(value), map(str, args))}")
        checked = value
    elif origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise wrong()
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise wrong()
            items = [check_value(v, a, source, (*key, i)) for i, (v, a) in
                     enumerate(zip(value, args, strict=True))]
        else:
            items = [check_value(v, args[0], source, (*key, i)) if args else v
                     for i, v in enumerate(value)]
        checked = tuple(items) if (origin or hint) is tuple else items
    elif origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise wrong()
        checked = ({k: check_value(v, args[1], source, (*key, k)) for k, v in value.items()}
                   if args else value)
    else:
        checked = value
    choices = metadata.get("choices")
    if choices is not None:
        placed: Iterable[tuple[Any, Any]] = (
            enumerate(checked) if isinstance(checked, list | tuple)
            else ((k, k) for k in checked) if isinstance(checked, dict)
            else [((), checked)])
        for place, item in placed:
            if item not in choices:
                where = (*key, place) if place != () else key
                raise source.error(where, f"{_name(key)}: unknown {item!r}"
                                        f"{did_you_mean(str(item), choices)}; known: "
                                        f"{', '.join(map(str, choices))}")
    return checked
