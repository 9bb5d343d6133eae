"""``python -m thbench <command> ...`` (installed also as the ``thbench`` command).

Commands: ``eval`` (run and score benchmarks, assets), ``datasets`` (prepare datasets, pair
lists), ``reports`` (leaderboards, tables, the regression gate), ``train`` (any trainable
method from a training config), ``animate`` (any method on a source image and a driving
video), ``methods`` and ``metrics`` (what exists, with options, protocols and backends).
``python -m thbench <command> --help`` gives each one's options.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "eval": ("thbench.cli.eval", "run a benchmark from a config, score outputs, manage assets"),
    "datasets": ("thbench.cli.datasets", "prepare VoxCeleb / TalkingHead-1KH, write pair lists"),
    "reports": ("thbench.cli.reports", "rebuild leaderboards and tables; the regression gate"),
    "train": ("thbench.cli.train", "train a method family from a training config"),
    "animate": ("thbench.cli.animate", "animate a source image with a driving video"),
    "methods": ("thbench.cli.methods", "list the methods: options, protocols, plug-ins"),
    "metrics": ("thbench.cli.metrics", "list the metrics: options, protocols, backends"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: python -m thbench <command> [options]\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    from thbench.core.logs import configure

    configure()  # the modules' loggers print, rank-prefixed under torchrun
    return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
