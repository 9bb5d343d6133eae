"""Reading a TOML config file into a table, with one-line errors that name the file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def read_table(path: str | os.PathLike, what: str, **overrides) -> dict:
    """The file's top-level table; ``overrides`` replace top-level keys (None: keep)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: invalid TOML ({error})") from None
    table.update({k: v for k, v in overrides.items() if v is not None})
    return table
