"""Sessions: ``nox -s eval`` (the benchmark on the embedded default), ``tests``, ``lint``.

Each session installs the project with what it needs into its own virtualenv (reused across
runs). The Surrey Face Model ships inside the package (``facegeom/sfm/``), so the 3DMM metrics
and HiDe-NeRF run offline on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent


@nox.session(name="eval")
def eval_(session: nox.Session) -> None:
    """Run the benchmark on the embedded default (or ``nox -s eval -- --config FILE``)."""
    session.install("-e", ".")
    args = session.posargs or ["--config", "configs/default.toml"]
    session.run("python", "-m", "eval", "run", *args)


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
    session.run("python", "-m", "eval.bench", *session.posargs)
    session.run("python", "-m", "eval.bench", "--frame-step", "1", "--clip-length", "64",
                *session.posargs)
    session.run("python", "-m", "facegeom.bench")
    session.run("python", "-m", "eval.scaling")
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
