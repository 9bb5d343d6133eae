"""The same run under torchrun (2 processes, gloo, CPU) and in one process: the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from thbench.eval.results import ResultStore
from thbench.eval.set_metrics import SET_PAIR_ID

REPO = Path(__file__).resolve().parents[1]


def _run(config: Path, processes: int, cache: Path) -> str:
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                 "--master_port=29517"] if processes > 1 else [sys.executable])
    # torchrun gives each rank one thread; the single process gets one too, since the thread
    # count changes how convolutions round (last bits of the Inception features)
    env = {**os.environ, "THB_PROGRESS": "0", "THB_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*launcher, "-m", "thbench", "eval", "run", "--config", str(config)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def runs(mini_dataset, random_fid_weights, run_config, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sharding")
    out = {}
    for processes in (1, 2):
        config = run_config(
            root / f"p{processes}", "sharded", mini_dataset.root, ["psnr", "l1", "akd", "fid"],
            extra=f'metric_options = {{ fid = {{ weights = "{random_fid_weights}" }} }}')
        log = _run(config, processes, root / "cache")  # analyses cached once, as users would
        out[processes] = (config.parent / "runs" / "sharded", log, config)
    return out


def test_two_ranks_give_the_single_process_rows(runs) -> None:
    single = {r.key: r for r in ResultStore(runs[1][0] / "results.csv").rows()}
    sharded = {r.key: r for r in ResultStore(runs[2][0] / "results.csv").rows()}
    assert set(single) == set(sharded)
    pairs = [k for k in single if k[3] != SET_PAIR_ID]
    assert len(pairs) == 2 * (3 * 3 + 2 * 0)  # 3 same-identity pairs x 3 pair metrics, per method
    for key in pairs:
        assert repr(sharded[key]) == repr(single[key])
    assert not (runs[2][0] / "shards").exists()  # merged into results.csv, shards removed
    log = runs[2][1]
    assert "[rank 1] source-copy:" in log and "source-copy:" in log


def test_fid_sums_are_reduced_across_ranks(runs) -> None:
    import numpy as np

    single = {r.key: r for r in ResultStore(runs[1][0] / "results.csv").rows()}
    sharded = {r.key: r for r in ResultStore(runs[2][0] / "results.csv").rows()}
    fid = [k for k in single if k[3] == SET_PAIR_ID]
    assert len(fid) == 4  # 2 methods x 2 protocols
    for method, dataset, protocol, _, _ in fid:
        a, b = single[(method, dataset, protocol, SET_PAIR_ID, "fid")], sharded[
            (method, dataset, protocol, SET_PAIR_ID, "fid")]
        assert a.frames == b.frames
        # the all-reduced running sums equal the single process's (another summation order)
        stats = [np.load(run[0] / "fid" / method / dataset / f"{protocol}.stats.npz")
                 for run in (runs[1], runs[2])]
        for name in stats[0].files:
            assert np.allclose(stats[0][name], stats[1][name], rtol=1e-10, atol=1e-9), name
        if (method, protocol) == ("driving-copy", "same-identity"):
            # its frames are the real set: the true distance is 0, and with 15 frames in 2048
            # dimensions sqrtm of the singular covariances returns rounding noise of either run,
            # which pytorch-fid rejects as an error row when its imaginary part is over 1e-3
            for row in (a, b):
                assert (row.status == "ok" and abs(row.value) < 1) or (
                    row.status == "error"
                    and row.reason.startswith("fid distance failed: Imaginary component")), row
        else:
            assert a.status == b.status == "ok"
            assert b.value == pytest.approx(a.value, rel=1e-6)


def test_rerun_under_torchrun_reuses_every_pair(runs) -> None:
    folder, _, config = runs[2]
    before = (folder / "results.csv").read_text()
    log = _run(config, 2, config.parent.parent / "cache")
    assert "source-copy: 0 pairs computed" in log
    assert "[rank 1] source-copy: 0 pairs computed" in log
    assert (folder / "results.csv").read_text() == before


@pytest.mark.slow
def test_embedded_default_under_torchrun(tmp_path: Path) -> None:
    """`nox -s eval`'s config without its trained methods (their training runs on rank 0
    alone), 2 ranks vs 1 process: identical rows and leaderboard values."""
    default = (REPO / "configs" / "default.toml").read_text()
    marker = "\n# The trainable methods"
    assert marker in default
    config = tmp_path / "default.toml"
    config.write_text(default.split(marker)[0])
    boards = {}
    for processes in (1, 2):
        folder = tmp_path / f"p{processes}"
        launcher = ([sys.executable, "-m", "torch.distributed.run",
                     f"--nproc_per_node={processes}", "--master_port=29518"]
                    if processes > 1 else [sys.executable])
        env = {**os.environ, "THB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
        result = subprocess.run([*launcher, "-m", "thbench", "eval", "run", "--config",
                                 str(config), "--output-dir", str(folder)],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = ResultStore(folder / "default" / "results.csv").rows()
        boards[processes] = {r.key: repr(r) for r in rows}
    assert boards[1] == boards[2]
