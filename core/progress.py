"""Progress of long work: a tqdm bar on a terminal, plain log lines anywhere else.

A bar redraws itself with carriage returns, which turns a CI log into a few enormous lines.
When standard error is not a terminal, :func:`progress` returns a :class:`LineProgress`
instead: the same ``update`` / ``set_postfix`` / ``close`` calls, printing one complete line
when the work starts, at most every ``interval`` seconds while it runs, and when it ends.
``THB_PROGRESS=0`` turns progress off altogether.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

LOG_INTERVAL_S = 30.0


class LineProgress:
    """A progress counter that prints whole lines (``desc: 12/40 pair (30%), 61 s, loss=…``)."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float = LOG_INTERVAL_S, stream: TextIO | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval = interval
        self.stream = stream or sys.stderr
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._closed = False
        self._print()

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._print()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print()

    def _print(self) -> None:
        self._last = time.monotonic()
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        postfix = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {count} {self.unit}{share}, {self._last - self._start:.0f} s"
              f"{postfix}", file=self.stream, flush=True)


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", initial: int = 0, enabled: bool = True):
    """A tqdm bar on a terminal, a :class:`LineProgress` otherwise; silent when ``enabled`` is
    false or ``THB_PROGRESS=0``."""
    from tqdm import tqdm

    if not enabled or os.environ.get("THB_PROGRESS", "1") == "0":
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial,
                    leave=False, dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)
