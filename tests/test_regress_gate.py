"""The regression gate's tolerances for trained rows: derived from runs on several CPU
configurations and from the rows' own intervals, read back from the file, and applied so that
a cross-CPU wobble passes while a real regression fails."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

from thbench.cli.reports import main
from thbench.reports.leaderboard import COLUMNS
from thbench.reports.regress import TrainedTolerances, compare


def _board(path: Path, rows: list[tuple], average: str = "") -> Path:
    """A leaderboard of (method, protocol, metric, value, ci_low, ci_high, status) rows, all of
    one ``average`` (empty: the column left blank, as files written before it existed)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for method, protocol, metric, value, low, high, status in rows:
            writer.writerow({
                "run": "default", "method": method, "dataset": "sample", "protocol": protocol,
                "metric": metric, "direction": "higher" if metric == "psnr" else "lower",
                "value": value, "ci_low": low, "ci_high": high, "n_pairs": 10, "n_frames": 150,
                "n_skipped": 0, "n_errors": 0, "status": status,
                "reason": "" if status == "ok" else "no face found", "backend": "b",
                "commit": "c", "config_hash": "h", "date": "d", "average": average})
    return path


def _runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    reference = _board(tmp_path / "a.csv", [
        ("source-copy", "same-identity", "l1", 0.1029, 0.08, 0.13, "ok"),
        ("fomm-tiny", "same-identity", "l1", 0.0773, 0.0660, 0.0886, "ok"),
        ("fomm-tiny", "same-identity", "psnr", 19.14, 18.28, 20.00, "ok"),
        ("fomm-tiny", "same-identity", "mkr", 0.033, 0.0, 0.083, "ok"),
    ])
    other = _board(tmp_path / "b.csv", [
        ("source-copy", "same-identity", "l1", 0.1029, 0.08, 0.13, "ok"),
        ("fomm-tiny", "same-identity", "l1", 0.0785, 0.0670, 0.0900, "ok"),
        ("fomm-tiny", "same-identity", "psnr", 19.04, 18.2, 19.9, "ok"),
        ("fomm-tiny", "same-identity", "mkr", float("nan"), float("nan"), float("nan"),
         "skipped"),
    ])
    tolerances = tmp_path / "tolerances.toml"
    assert main(["derive-tolerances", "--reference", str(reference), "--runs", str(other),
                 "--methods", "fomm-tiny", "--out", str(tolerances)]) == 0
    return reference, other, tolerances


def test_derived_tolerances_equal_the_formula(tmp_path: Path) -> None:
    _, _, path = _runs(tmp_path)
    trained = TrainedTolerances.read(path)
    key = ("fomm-tiny", "sample", "same-identity")
    # l1: max(3 x 0.0012, 0.5 x 0.0113, 0.001) = 0.00565 (the interval's share wins)
    assert abs(trained.tolerances[(*key, "l1", "per-pair")] - 0.5 * (0.0886 - 0.0660) / 2) \
        < 1e-12
    # psnr: max(3 x 0.10, 0.5 x 0.86, 0.05) = 0.43
    assert abs(trained.tolerances[(*key, "psnr", "per-pair")] - 0.5 * (20.00 - 18.28) / 2) \
        < 1e-12
    assert trained.status_may_change == {(*key, "mkr", "per-pair")}
    assert ("source-copy", "sample", "same-identity", "l1", "per-pair") not in trained.tolerances
    text = path.read_text()
    assert text.count("# run: ") == 2
    rows = {r["metric"]: r for r in tomllib.loads(text)["rows"]}
    assert abs(rows["l1"]["spread"] - 0.0012) < 1e-12 and rows["l1"]["runs"] == 2


def test_spread_wins_when_runs_differ_more_than_the_interval(tmp_path: Path) -> None:
    reference = _board(tmp_path / "a.csv", [("m", "same-identity", "l1", 0.50, 0.49, 0.51, "ok")])
    other = _board(tmp_path / "b.csv", [("m", "same-identity", "l1", 0.52, 0.51, 0.53, "ok")])
    out = tmp_path / "t.toml"
    assert main(["derive-tolerances", "--reference", str(reference), "--runs", str(other),
                 "--methods", "m", "--out", str(out)]) == 0
    (tolerance,) = TrainedTolerances.read(out).tolerances.values()
    assert abs(tolerance - 3 * 0.02) < 1e-12


def test_gate_passes_a_wobble_and_fails_real_regressions(tmp_path: Path, capsys) -> None:
    reference, other, tolerances = _runs(tmp_path)
    trained = TrainedTolerances.read(tolerances)
    # the other CPU's run: l1 within its tolerance; mkr skipped there, which it may be
    assert compare(reference, other, trained=trained) == []
    # without the trained tolerances the same wobble fails (the old, machine-bound gate)
    assert {r.key[-2] for r in compare(reference, other)} == {"l1", "psnr", "mkr"}
    worse = _board(tmp_path / "worse.csv", [
        ("source-copy", "same-identity", "l1", 0.1040, 0.08, 0.13, "ok"),  # fixed input: +0.0011
        ("fomm-tiny", "same-identity", "l1", 0.0900, 0.08, 0.10, "ok"),  # undertrained: +0.0127
        ("fomm-tiny", "same-identity", "psnr", 19.10, 18.3, 19.9, "ok"),
        ("fomm-tiny", "same-identity", "mkr", 0.05, 0.0, 0.1, "ok"),
    ])
    found = compare(reference, worse, trained=trained)
    assert [(r.key[1], r.key[-2]) for r in found] == [("source-copy", "l1"), ("fomm-tiny", "l1")]
    # like with like: the reference (no average column) holds per-pair rows; a current board
    # whose per-pair rows are the reference's and whose per-frame rows differ passes
    rows = [("source-copy", "same-identity", "l1", 0.1029, 0.08, 0.13, "ok")]
    per_pair = _board(tmp_path / "pp.csv", rows, "per-pair").read_text()
    per_frame = _board(tmp_path / "pf.csv", [(*rows[0][:3], 0.2, 0.1, 0.3, "ok")], "per-frame")
    both = tmp_path / "both.csv"
    both.write_text(per_pair + per_frame.read_text().split("\n", 1)[1])
    only = _board(tmp_path / "only.csv", rows)
    assert compare(only, both) == []
    assert [r.key[-1] for r in compare(both, per_frame)] == ["per-pair"]  # missing now
    assert main(["regress", "--reference", str(reference), "--current", str(other),
                 "--tolerances", str(tolerances)]) == 0
    assert "(3 trained rows with tolerances from" in capsys.readouterr().out
    assert main(["regress", "--reference", str(reference), "--current", str(worse),
                 "--tolerances", str(tolerances)]) == 1


def test_only_methods_the_run_trains_get_derived_tolerances(tmp_path: Path) -> None:
    """A method evaluated from its shipped checkpoint is inference on fixed weights: its rows
    keep the fixed-input tolerances. With ``retrain`` the run trains it, and it gets its own."""
    import json

    reference, other, _ = _runs(tmp_path)
    spec = {"name": "fomm", "label": "fomm-tiny", "train": "t.toml", "shipped": "ckpt"}
    out = tmp_path / "derived.toml"
    for retrain, expected in ((False, 0), (True, 3)):  # fomm-tiny: l1, psnr, mkr
        (tmp_path / "run.json").write_text(json.dumps(
            {"config": {"retrain": retrain, "methods": [spec, {"name": "source-copy",
                                                                "label": ""}]}}))
        assert main(["derive-tolerances", "--reference", str(reference), "--runs", str(other),
                     "--out", str(out)]) == 0
        assert len(TrainedTolerances.read(out).tolerances) == expected
