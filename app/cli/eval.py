"""Command line: ``python -m thbench eval {run,score,assets}``.

Errors are one line naming the file and the problem; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from thbench.core import assets
from thbench.core.cli import run_subcommand
from thbench.datasets.protocols import ALL_PROTOCOLS


def _assets(args: argparse.Namespace) -> int:
    names = args.names or sorted(assets.manifest())
    failed = 0
    for name in names:
        asset = assets.get(name)
        if args.action == "list":
            source = asset.url or asset.pip or f"package {asset.package}"
            print(f"{name:22s} {asset.filename:42s} {asset.size:>11,d} B  {asset.licence}\n"
                  f"{'':22s} used by: {asset.used_by}\n{'':22s} from: {source}")
            continue
        if args.action == "download":
            try:
                print(f"{name}: ok {assets.download(name)}")
            except assets.AssetError as error:
                print(f"{name}: {error}")
                failed += 1
            continue
        state, detail = assets.status(name)
        print(f"{name:22s} {state:8s} {detail}")
        failed += state != "ok"
    return 1 if failed and args.action == "download" else 0


def _run(args: argparse.Namespace) -> int:
    from thbench.core.processes import leave
    from thbench.eval import distributed
    from thbench.eval.benchmark import run_benchmark
    from thbench.eval.config import default_config, load_config
    from thbench.reports.build import build_reports

    if args.offline:
        os.environ["THB_OFFLINE"] = "1"
    config = load_config(args.config or default_config(), args.set, output_dir=args.output_dir,
                         retrain=args.retrain or None)
    if config.retrain:  # its own folder: retrained weights differ from the shipped ones off
        config.name += "-retrained"  # the CPU that trained them, and outputs never mix
    shard = distributed.start(config.device)
    try:
        summaries = run_benchmark(config, shard)
    except BaseException:
        leave(wait=False)
        raise
    leave()
    for label, summary in summaries.items():
        for problem in summary.problems:
            print(f"error in {label} {problem.protocol} {problem.pair_id}: {problem.message}")
        for gap in summary.unsupported:
            print(f"not run by {label}: {gap.protocol} {gap.pair_id}: {gap.message}")
    if not shard.main:
        return 0
    paths = build_reports(config.run_dir)
    print("tables: " + ", ".join(str(p) for p in paths))
    failed = {label: s.failed for label, s in summaries.items() if s.failed}
    if failed:
        print(f"{len(failed)} method{'s' if len(failed) > 1 else ''} failed: " +
              "; ".join(f"{label} ({reason})" for label, reason in failed.items()),
              file=sys.stderr)
        return 1
    return 0


def _score(args: argparse.Namespace) -> int:
    from thbench.eval.config import default_config
    from thbench.eval.score import score_outputs
    from thbench.reports.build import build_reports

    scored = score_outputs(args.outputs, args.config or default_config(), args.method,
                           args.protocol, output_dir=args.output_dir, append=args.append)
    paths = build_reports(scored.run_dir)
    print("tables: " + ", ".join(str(p) for p in paths))
    strict = args.strict if args.strict is not None else bool(os.environ.get("CI"))
    if scored.missing and strict:
        print(f"error: {len(scored.missing)} of {scored.pairs} pairs missing in {args.outputs} "
              "(--strict)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench eval", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the benchmark described by a config file")
    run.add_argument("--config", default=None,
                     help="run config (TOML); default: the checkout's configs/default.toml, "
                          "from any directory. Relative paths in it follow the file")
    run.add_argument("--output-dir", help="override the config's output_dir")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="change a config setting: dataset.root=/data/vox1-test, seed=1, "
                          "methods.LABEL.checkpoint=/ckpt/vox-cpk.pth.tar (recorded in run.json)")
    run.add_argument("--offline", action="store_true",
                     help="never download (as THB_OFFLINE=1): missing assets are reported")
    run.add_argument("--retrain", action="store_true",
                     help="train the methods that have a training config instead of using "
                          "their shipped checkpoints (the default's tiny models: about an hour)")
    run.set_defaults(func=_run)

    score = sub.add_parser("score", help="score outputs that already exist on disk")
    score.add_argument("--outputs", required=True,
                       help="a frame folder <pair_id>/ or a video <pair_id>.mp4 per pair")
    score.add_argument("--method", required=True, help="name to report the outputs under")
    score.add_argument("--protocol", required=True, choices=ALL_PROTOCOLS)
    score.add_argument("--config", default=None,
                       help="config giving the dataset, metrics and output folder (default: "
                            "the checkout's configs/default.toml)")
    score.add_argument("--output-dir", help="override the config's output_dir")
    score.add_argument("--append", action="store_true",
                       help="add the rows to a run folder that already holds results")
    score.add_argument("--strict", action=argparse.BooleanOptionalAction, default=None,
                       help="exit 1 when pairs have no outputs (default: on when $CI is set)")
    score.set_defaults(func=_score)

    asset = sub.add_parser("assets", help="list, check or download external files")
    asset.add_argument("action", choices=["list", "check", "download"])
    asset.add_argument("names", nargs="*", help="asset names (default: all)")
    asset.set_defaults(func=_assets)

    return run_subcommand(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
