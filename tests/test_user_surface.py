"""The command line fails fast and says why, in real subprocesses: config typos and bad values
(file and line, or the --set flag, with a did-you-mean), a second run on a busy run folder (the
holder's pid; a killed holder's lock is taken over), and `eval score` with missing pairs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _thbench(*args: str, cwd: Path = REPO, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    env = {**os.environ, "THB_PROGRESS": "0", "OMP_NUM_THREADS": "1", **(env or {})}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "thbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


CONFIG = """\
name = "typos"
output_dir = "runs"
protocols = ["same-identity"]
metrics = ["l1"]

[dataset]
name = "mini"
root = "nowhere"

[[methods]]
name = "fomm"
options = { checkpoint = "vox-cpk.pth.tar" }
"""


@pytest.mark.parametrize("change, flags, message", [
    (("metrics = [", "batch_sise = 8\nmetrics = ["), [],
     "config.toml:4: unknown key 'batch_sise' in the top level (did you mean 'batch_size'?)"),
    ((), ["--set", "dataset.rot=/data"],
     "--set dataset.rot=/data: unknown key 'rot' in [dataset] (did you mean 'root'?)"),
    (('["same-identity"]', '["same-identiy"]'), [],
     "config.toml:3: protocols: unknown 'same-identiy' (did you mean 'same-identity'?)"),
    ((), ["--set", "batch_size=eight"],
     "--set batch_size=eight: batch_size must be an integer, not 'eight'"),
    (('name = "mini"', 'name = "mini"\nsize = "256"'), [],
     "config.toml:8: dataset.size must be an integer, not '256'"),
    ((), ["--set", "methods.fomm.chekpoint=x.pth"],
     "--set methods.fomm.chekpoint=x.pth: method 'fomm' (fomm): unknown option 'chekpoint' "
     "(did you mean 'checkpoint'?)"),
    ((), ["--set", "metric_options.csim.backnd=dlib"],
     "--set metric_options.csim.backnd=dlib: metric_options.csim: unknown option 'backnd' "
     "(did you mean 'backend'?)"),
])
def test_config_mistakes_fail_before_any_work(tmp_path: Path, change: tuple, flags: list,
                                              message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.replace(*change) if change else CONFIG)
    result = _thbench("eval", "run", "--config", str(path), *flags)
    assert result.returncode == 2, result.stderr[-2000:]
    error = result.stderr.strip()
    assert "\n" not in error and error.startswith("error: ")
    assert message in error, error
    assert not (tmp_path / "runs").exists()  # nothing was made


def test_the_default_config_works_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    from thbench.core.cli import checkout_config
    from thbench.eval.config import default_config, load_config
    from thbench.training.config import load_train_config

    monkeypatch.chdir(tmp_path)
    config = load_config(default_config())
    assert Path(config.output_dir) == REPO / "runs"
    for spec in config.methods:
        if spec.train:  # relative to configs/, not to the current directory
            assert Path(spec.train).is_file(), spec.train
            assert load_train_config(spec.train).run_dir.parent == REPO / "runs" / "train"
    # the profilers' and the sanity script's default configs are found the same way
    assert checkout_config("train/hidenerf-tiny-sample.toml") == \
        REPO / "configs" / "train" / "hidenerf-tiny-sample.toml"
    with pytest.raises(FileNotFoundError, match="configs/nope.toml: not found"):
        checkout_config("nope.toml")
    result = _thbench("eval", "run", "--set", "batch_size=eight", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --set batch_size=eight: batch_size must be an "
                                     "integer, not 'eight'")


HOLD = """
import sys, time
from pathlib import Path
from thbench.core.run_lock import run_folder_lock
with run_folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_busy_run_folder_refuses_a_second_run_and_a_killed_holder_is_taken_over(
        mini_dataset, run_config, tmp_path: Path) -> None:
    config = run_config(tmp_path, "locked", mini_dataset.root, ["l1"], ("same-identity",))
    folder = tmp_path / "runs" / "locked"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = _thbench("eval", "run", "--config", str(config))
        assert second.returncode == 2
        error = second.stderr.strip()
        assert "\n" not in error
        assert error.startswith(f"error: {folder}: run folder in use by process {holder.pid} ")
        assert not (folder / "results.csv").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up: the holder file stays behind
        holder.wait()
    assert (folder / "run.lock.pid").read_text().startswith(f"{holder.pid} ")
    after = _thbench("eval", "run", "--config", str(config))
    assert after.returncode == 0, after.stderr[-2000:]
    assert (folder / "results.csv").is_file() and not (folder / "run.lock.pid").exists()


def test_score_says_how_many_pairs_are_missing_and_strict_fails(
        mini_dataset, run_config, tmp_path: Path) -> None:
    config = run_config(tmp_path, "scored", mini_dataset.root, ["l1"], ("same-identity",))
    assert _thbench("eval", "run", "--config", str(config)).returncode == 0
    generated = tmp_path / "runs" / "scored" / "outputs" / "source-copy" / "mini" / "same-identity"
    mine = tmp_path / "mine"
    pairs = sorted(p.pair_id for p in mini_dataset.pairs("same-identity") if not p.skip)
    shutil.copytree(generated / pairs[0], mine / pairs[0])
    score = ["eval", "score", "--config", str(config), "--outputs", str(mine), "--method",
             "mine", "--protocol", "same-identity"]

    refused = _thbench(*score)
    assert refused.returncode == 2
    assert "run folder already holds results; pass --append" in refused.stderr

    missing = f"{len(pairs) - 1} of {len(pairs)} pairs missing"
    strict = _thbench(*score, "--append", "--strict")
    assert strict.returncode == 1
    assert f"mine: 1 pairs scored, 0 already scored, {missing}, 0 other errors" in strict.stdout
    assert strict.stderr.strip().endswith(f"error: {missing} in {mine} (--strict)")

    elsewhere = _thbench(*score, "--output-dir", str(tmp_path / "new"))
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    assert missing in elsewhere.stdout, elsewhere.stdout


def test_score_is_strict_under_ci(mini_dataset, run_config, tmp_path: Path) -> None:
    config = run_config(tmp_path, "ci", mini_dataset.root, ["l1"], ("same-identity",))
    (tmp_path / "empty").mkdir()
    args = [sys.executable, "-m", "thbench", "eval", "score", "--config", str(config),
            "--outputs", str(tmp_path / "empty"), "--method", "mine", "--protocol",
            "same-identity"]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "THB_PROGRESS": "0", "CI": "true"})
    pairs = sum(not p.skip for p in mini_dataset.pairs("same-identity"))
    assert result.returncode == 1 and f"{pairs} of {pairs} pairs missing" in result.stdout
