"""The package's one logging channel, set up once by the command line (:func:`configure`).

Modules log through ``logging.getLogger(__name__)``, all under the ``thbench`` logger. Once
configured, INFO lines go to stdout as plain text (as ``print`` did) and warnings and errors to
stderr; under ``torchrun`` every line of a rank other than 0 starts with ``[rank N]``. The
stream is looked up at each line, so redirections made later (pytest's capture) still apply.
Progress is not a log line: :mod:`thbench.core.progress` draws a tqdm bar on a terminal and
whole lines every 30 s elsewhere (CI logs).
"""

from __future__ import annotations

import logging
import os
import sys

ROOT = "thbench"


class _Console(logging.Handler):
    """INFO and below to the current ``sys.stdout``, WARNING and above to ``sys.stderr``."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


class _RankFormatter(logging.Formatter):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.prefix = f"[rank {rank}] " if rank else ""

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix + record.getMessage()


def configure(rank: int | None = None, level: int = logging.INFO) -> None:
    """Route the ``thbench`` loggers to the console (again, replacing an earlier set-up);
    ``rank`` defaults to torchrun's ``RANK``."""
    if rank is None:
        rank = int(os.environ.get("RANK", "0") or 0)
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if isinstance(h, _Console)]:
        logger.removeHandler(handler)
    handler = _Console()
    handler.setFormatter(_RankFormatter(rank))
    logger.addHandler(handler)
    logger.setLevel(level)
