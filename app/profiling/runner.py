"""Where the runner's time goes: ``python -m thbench.profiling.runner`` (or ``nox -s bench``).

Runs the embedded default's pairs for the given methods and metrics in a temporary run folder
with an empty face-analysis cache, and times every network (face detection + landmarks, the
3DMM fit, each identity embedder, each metric's own computation, the method's forward pass)
*exclusively*: time spent in a nested timed call counts for the inner one only (per thread: the
method runs on the main thread while the previous pair is scored on a worker thread). What is
left of the wall time is the runner's own overhead that nothing hides (PNG decoding and
encoding, caches, result rows, bookkeeping). Prints ms per frame for each part, the overhead's
share of the total, and the process's peak RSS: run it with ``--frame-step 1 --clip-length 64``
(the same pairs with four times the frames) to see that memory does not grow with clip length.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from thbench.core.method import FramewiseMethod
from thbench.datasets.config import load_dataset
from thbench.eval.benchmark import check_methods, method_factory
from thbench.eval.config import default_config, load_config
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner


class ExclusiveTimer:
    """Accumulates exclusive seconds per label for wrapped callables (a stack of timers)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()  # per thread: the active calls [start, children]

    def wrap(self, label: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append([time.perf_counter(), 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                start, children = stack.pop()
                spent = time.perf_counter() - start
                self.seconds[label] += spent - children
                self.calls[label] += 1
                if stack:
                    stack[-1][1] += spent

        return timed

    def patch(self, obj, attribute: str, label: str) -> None:
        setattr(obj, attribute, self.wrap(label, getattr(obj, attribute)))


def instrument(runner: Runner, timer: ExclusiveTimer) -> None:
    analyzer = runner.analyzer()
    if analyzer is not None:
        timer.patch(analyzer.detector, "detect", "face detection + 68 landmarks (dlib)")
        for part, label in (("fitter", "3DMM fit (eos SFM)"), ("dlib", "dlib descriptor"),
                            ("arcface", "ArcFace")):
            component = getattr(analyzer, part)
            if component is not None:
                timer.patch(component, "fit" if part == "fitter" else "embed", label)
    for metric in runner.metrics:
        timer.patch(metric, "update", f"metric {metric.name}")
    if runner.fid is not None:
        timer.patch(runner.fid, "features", "metric fid (Inception)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None,
                        help="run config (default: the checkout's configs/default.toml)")
    parser.add_argument("--methods", nargs="+", default=["source-copy", "driving-copy"])
    parser.add_argument("--frame-step", type=int, help="override the dataset's frame_step")
    parser.add_argument("--clip-length", type=int, help="override the dataset's clip_length")
    args = parser.parse_args(argv)
    config = load_config(args.config or default_config())
    if args.frame_step:
        config.dataset.frame_step = args.frame_step
    if args.clip_length:
        config.dataset.clip_length = args.clip_length
    config.methods = [m for m in config.methods if m.name in args.methods]
    check_methods(config)
    dataset = load_dataset(config.dataset, config.seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timer = ExclusiveTimer()
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(dataset, ResultStore(Path(tmp) / "results.csv"), Path(tmp) / "outputs",
                        build_metrics(config.metrics, config.metric_options), config.batch_size,
                        analysis_cache=Path(tmp) / "analyses")
        instrument(runner, timer)
        start = time.perf_counter()
        for spec in config.methods:
            for protocol in config.protocols:
                make = method_factory(spec, config, protocol)

                def timed_method(make=make, label=spec.display):
                    method = make()
                    if isinstance(method, FramewiseMethod):
                        timer.patch(method, "forward_batch", f"method {label}")
                    return method

                runner.run(spec.display, timed_method, [protocol])
                frames += sum(len(p.driving_frames) for p in dataset.pairs(protocol)
                              if not p.skip)
        total = time.perf_counter() - start
    networks = sum(timer.seconds.values())
    print(f"eval bench: {frames} generated frames ({', '.join(args.methods)}), "
          f"{len(config.metrics)} metrics, empty analysis cache")
    for label, seconds in sorted(timer.seconds.items(), key=lambda item: -item[1]):
        per_frame = 1000 * seconds / frames
        print(f"  {label:42s} {per_frame:8.2f} ms/frame  ({timer.calls[label]} calls)")
    overhead = total - networks
    print(f"  {'runner overhead (I/O, caches, rows)':42s} {1000 * overhead / frames:8.2f} ms/frame")
    print(f"  {'total':42s} {1000 * total / frames:8.2f} ms/frame, {total:.1f} s")
    print(f"  outside the networks: {100 * overhead / total:.1f}% of the total (goal < 15%)")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak RSS {rss_after / 1024:.0f} MiB ({(rss_after - rss_before) / 1024:+.0f} MiB "
          f"during the run; clips of {config.dataset.clip_length} frames, "
          f"every {config.dataset.frame_step}th source frame)")
    for name, reason in runner.unavailable().items():
        print(f"  skipped {name}: {reason.split(';')[0]}")


if __name__ == "__main__":
    main()
