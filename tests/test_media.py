"""Frame batching and the decoding prefetch thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from thbench.core.media import prefetch, stack_batches


def test_stack_batches_keeps_order_and_a_short_tail() -> None:
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(7)]
    batches = list(stack_batches(iter(frames), 3))
    assert [b.shape[0] for b in batches] == [3, 3, 1]
    assert np.array_equal(np.concatenate(batches)[:, 0, 0, 0], np.arange(7))


def test_prefetch_runs_ahead_in_order_and_reraises() -> None:
    produced: list[int] = []

    def slow_source():
        for i in range(5):
            produced.append(i)
            yield i
        raise ValueError("corrupt after 5 items")

    stream = prefetch(slow_source(), depth=2)
    assert next(stream) == 0
    time.sleep(0.05)
    assert len(produced) >= 3  # decoded ahead while the consumer worked
    rest = []
    with pytest.raises(ValueError, match="corrupt after 5 items"):
        for item in stream:
            rest.append(item)
    assert rest == [1, 2, 3, 4]  # the error comes after the items before it


def test_prefetch_abandoned_early_stops_its_thread() -> None:
    before = threading.active_count()
    stream = prefetch(iter(range(1000)), depth=1)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before
