"""``python -m thbench metrics``: every metric of the registry with its direction, protocols,
scope, the options its constructor takes, its backend with the default options, and whether it
can run here (never downloading: ``python -m thbench eval assets download`` does). Definitions:
docs/metrics.md."""

from __future__ import annotations

import argparse
import os
import sys

from thbench.core.cli import one_line
from thbench.core.families import keyword_options
from thbench.eval.metrics import REGISTRY, metric_class

INDENT = "    "


def describe(name: str) -> list[str]:
    """The lines that describe one metric."""
    try:
        cls = metric_class(name)
        metric = cls()
        backend, reason = metric.backend, metric.available()
    except Exception as error:  # a metric whose code or backend fails is listed, not fatal
        return [f"{name}  NOT LOADABLE", f"{INDENT}error: {type(error).__name__}: "
                                          f"{one_line(error)}"]
    direction = "higher is better" if cls.higher_is_better else "lower is better"
    lines = [f"{name}  [{REGISTRY[name]}]", f"{INDENT}{direction}; scope: {cls.scope}; "
                                             f"protocols: {', '.join(cls.protocols)}"]
    options, open_ended = keyword_options(cls)
    shown = ", ".join([f"{p.name}={p.default!r}" for p in options.values()]
                      + ["**kwargs"] * open_ended) or "(none)"
    lines.append(f"{INDENT}options: {shown}")
    lines.append(f"{INDENT}backend: {backend}")
    lines.append(f"{INDENT}{'runs here' if not reason else 'cannot run here: ' + reason}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench metrics",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[[], *REGISTRY], metavar="NAME",
                        help="metrics to describe (default: all)")
    args = parser.parse_args(argv)
    os.environ["THB_OFFLINE"] = "1"  # listing never downloads
    for name in args.names or list(REGISTRY):
        print("\n".join(describe(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
