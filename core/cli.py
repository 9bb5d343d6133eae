"""What the command lines share: the error contract (a user-facing problem is one line on
stderr and exit status 2; ``--debug`` shows the traceback instead) and where their default
configs lie (:func:`checkout_config`, found from the package, not from the current directory)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its first), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def checkout_config(relative: str) -> Path:
    """``configs/<relative>`` of the checkout this package runs from, found from the package's
    own location so that a command's default config works from any directory."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "configs" / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"configs/{relative}: not found beside the installed package (a "
                            "source checkout has it); give --config FILE")


def run_subcommand(args: argparse.Namespace) -> int:
    """Call ``args.func(args)``, turning OSError, ValueError, KeyError and RuntimeError into
    ``error: <message>`` (unless ``args.debug``)."""
    try:
        return args.func(args)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
