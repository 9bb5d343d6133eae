"""Command line: ``python -m thbench reports {build,regress,update-reference}``.

- ``build RUN_DIR ...``: rebuild a run's leaderboards, tables and HTML from its result rows.
- ``regress --reference FILE --current FILE [--tolerances FILE] [--tolerance METRIC=VALUE ...]``:
  exit 1 with a list when a metric got worse than the reference beyond its tolerance, else 0.
- ``derive-tolerances --reference FILE --runs FILE ... --out FILE``: the trained rows'
  tolerances from leaderboards of the same config run on other CPU configurations.
- ``update-reference --current FILE --reference FILE``: deliberately replace the reference.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def _build(args: argparse.Namespace) -> int:
    from thbench.reports.build import build_reports

    for run_dir in args.run_dirs:
        paths = build_reports(run_dir, html=not args.no_html)
        print("reports: " + ", ".join(str(p) for p in paths))
    return 0


def _tolerances(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--tolerance {item!r}: expected METRIC=NUMBER") from None
    return out


def _regress(args: argparse.Namespace) -> int:
    from thbench.reports.regress import TrainedTolerances, compare

    trained = TrainedTolerances.read(Path(args.tolerances)) if args.tolerances else None
    regressions = compare(Path(args.reference), Path(args.current), _tolerances(args.tolerance),
                          trained)
    if not regressions:
        rows = len(trained.tolerances) if trained else 0
        print(f"no regression: {args.current} against {args.reference}"
              + (f" ({rows} trained rows with tolerances from {args.tolerances})" if rows else ""))
        return 0
    print(f"{len(regressions)} regression(s) of {args.current} against {args.reference}:")
    for regression in regressions:
        print(f"  {regression}")
    return 1


def _trained_methods(leaderboard: Path) -> list[str]:
    """Labels of the methods the run trains, from the ``run.json`` beside its leaderboard. A
    method evaluated from its shipped checkpoint is not trained by the run: its rows are
    inference on fixed weights, checked like any fixed-input row."""
    import json

    record = leaderboard.parent / "run.json"
    if not record.is_file():
        raise FileNotFoundError(f"{record}: run record not found (give --methods)")
    config = json.loads(record.read_text())["config"]
    return [m["label"] or m["name"] for m in config["methods"]
            if m.get("train") and (config.get("retrain") or not m.get("shipped"))]


def _derive_tolerances(args: argparse.Namespace) -> int:
    from thbench.reports.regress import derive_tolerances, write_tolerances

    reference = Path(args.reference)
    methods = args.methods or _trained_methods(reference)
    rows = derive_tolerances(reference, [Path(p) for p in args.runs], methods)
    write_tolerances(Path(args.out), rows, [args.reference, *args.runs])
    unstable = sum(r["status_may_change"] for r in rows)
    print(f"{args.out}: {len(rows)} rows of {', '.join(methods) or 'no method trained by the run'}"
          f" from {1 + len(args.runs)} runs "
          f"({unstable} whose status differs between runs)")
    return 0


def _update_reference(args: argparse.Namespace) -> int:
    from thbench.reports.leaderboard import read_leaderboard

    read_leaderboard(Path(args.current))  # refuse anything that is not a leaderboard
    Path(args.reference).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.current, args.reference)
    print(f"reference {args.reference} replaced by {args.current}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench reports",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="rebuild reports from existing result rows")
    build.add_argument("run_dirs", nargs="+", help="run folders (holding run.json)")
    build.add_argument("--no-html", action="store_true")
    build.set_defaults(func=_build)
    regress = sub.add_parser("regress", help="compare a leaderboard with a reference")
    regress.add_argument("--reference", required=True)
    regress.add_argument("--current", required=True)
    regress.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE")
    regress.add_argument("--tolerances", help="trained rows' tolerances (derive-tolerances)")
    regress.set_defaults(func=_regress)
    derive = sub.add_parser("derive-tolerances",
                            help="trained rows' tolerances from runs on several CPU setups")
    derive.add_argument("--reference", required=True, help="the reference run's leaderboard")
    derive.add_argument("--runs", nargs="+", required=True,
                        help="leaderboards of the same config on other CPU configurations")
    derive.add_argument("--methods", nargs="*", help="trained labels (default: from run.json)")
    derive.add_argument("--out", required=True)
    derive.set_defaults(func=_derive_tolerances)
    update = sub.add_parser("update-reference", help="replace the reference deliberately")
    update.add_argument("--current", required=True)
    update.add_argument("--reference", required=True)
    update.set_defaults(func=_update_reference)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, KeyError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
