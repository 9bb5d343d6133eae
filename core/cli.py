"""The command lines' shared error contract: a user-facing problem is one line on stderr and
exit status 2; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import argparse
import sys


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its first), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
