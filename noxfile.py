"""Sessions: ``nox -s eval`` (the benchmark on the embedded default), ``tests``, ``lint``.

Each session installs the project with what it needs into its own virtualenv (reused across
runs). ``eval`` points the asset manager's offline directory at ``../shared/models/sfm`` when
that folder exists and ``THB_ASSETS_DIR`` is not set, so the 3DMM metrics run offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
SHARED_SFM = ROOT.parent / "shared" / "models" / "sfm"


def _offline_env() -> dict[str, str]:
    if "THB_ASSETS_DIR" not in os.environ and SHARED_SFM.is_dir():
        return {"THB_ASSETS_DIR": str(SHARED_SFM)}
    return {}


@nox.session(name="eval")
def eval_(session: nox.Session) -> None:
    """Run the benchmark on the embedded default (or ``nox -s eval -- --config FILE``)."""
    session.install("-e", ".")
    args = session.posargs or ["--config", "configs/default.toml"]
    session.run("python", "-m", "eval", "run", *args, env=_offline_env())


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (``nox -s tests -- -m slow`` for the slow end-to-end tests)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"THB_PROGRESS": "0"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput: where the runner's time goes, the face-geometry stages, each baseline's
    frames/s and HiDe-NeRF's ms/frame, memory and FLOPs."""
    session.install("-e", ".")
    session.run("python", "-m", "eval.bench", *session.posargs, env=_offline_env())
    session.run("python", "-m", "eval.bench", "--frame-step", "1", "--clip-length", "64",
                *session.posargs, env=_offline_env())
    session.run("python", "-m", "facegeom.bench", env=_offline_env())
    session.run("python", "-m", "eval.scaling", env=_offline_env())
    session.run("python", "-m", "baselines.bench")
    session.run("python", "-m", "hidenerf.bench")


@nox.session
def leaderboard(session: nox.Session) -> None:
    """Rebuild leaderboards, tables and HTML of every run under runs/ from their result rows."""
    session.install("-e", ".")
    runs = sorted(str(p.parent) for p in ROOT.glob("runs/*/run.json"))
    if not runs:
        session.error("no run under runs/ (run `nox -s eval` first)")
    session.run("python", "-m", "reports", "build", *runs)


@nox.session
def regress(session: nox.Session) -> None:
    """Fail when the embedded default got worse than reports/reference/default.csv."""
    session.install("-e", ".")
    session.run("python", "-m", "reports", "regress", "--reference",
                "reports/reference/default.csv", "--current", "runs/default/leaderboard.csv",
                *session.posargs)
