"""Sessions: ``nox -s eval`` (the benchmark on the embedded default), ``tests``, ``lint``,
``bench``, ``gpu``, ``leaderboard``, ``regress``.

Every session runs in one virtualenv, ``.nox/shared``, so torch and the face-analysis stack
install once (CI runs three sessions): it is created on first use and the project is
reinstalled into it whenever ``pyproject.toml`` changes. The Surrey Face Model ships inside the
package (``facegeom/sfm/``), so the 3DMM metrics and HiDe-NeRF run offline on a fresh clone.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
SHARED_ENV = ROOT / ".nox" / "shared"


def _python(session: nox.Session) -> str:
    """The shared virtualenv's interpreter, with the project (and its test and lint extras)
    installed for the current ``pyproject.toml`` and set of package files.

    The install is editable in setuptools' strict mode: a tree of links to the sources, laid
    out as the package (``thbench/``, ``thbench/eval/``, ...), which mypy, pyright and editors
    follow (the default mode's import hook hides the package from them). A new module needs
    a new link, so the install is redone whenever the package's files change."""
    python = SHARED_ENV / "bin" / "python"
    stamp = SHARED_ENV / ".installed-for"
    wanted = _install_key()
    if not python.is_file():
        session.run(sys.executable, "-m", "venv", str(SHARED_ENV), external=True)
    if not stamp.is_file() or stamp.read_text() != wanted:
        session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip",
                    external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", "-e", ".[test,lint]",
                    "--config-settings", "editable_mode=strict", external=True)
        stamp.write_text(wanted)
    return str(python)


def _package_dirs() -> dict[str, str]:
    """``[tool.setuptools.package-dir]``: package name -> source folder."""
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]


def _install_key() -> str:
    """sha256 of ``pyproject.toml`` and of the names of the files the package installs."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    for folder in sorted(set(_package_dirs().values())):
        for file in sorted((ROOT / folder).rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
    return digest.hexdigest()


def _run(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    session.run(_python(session), *args, env=env, external=True)


@nox.session(name="eval", venv_backend="none")
def eval_(session: nox.Session) -> None:
    """Run the benchmark on the embedded default (or ``nox -s eval -- --config FILE``)."""
    args = session.posargs or ["--config", "configs/default.toml"]
    _run(session, "-m", "thbench", "eval", "run", *args)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite (``nox -s tests -- -m slow`` for the slow end-to-end tests)."""
    _run(session, "-m", "pytest", *session.posargs, env={"THB_PROGRESS": "0"})


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff, import-linter's contracts in pyproject.toml (layers, no cycles), then mypy on the
    installed package against ``mypy-baseline.txt`` (``nox -s lint -- --update-baseline``
    rewrites it once the count went down)."""
    _run(session, "-m", "ruff", "check", ".")
    stage = _installed_layout(ROOT / ".nox" / "lint")
    lint_imports = str(Path(_python(session)).parent / "lint-imports")
    session.run(lint_imports, "--no-cache", "--no-logo", env={"PYTHONPATH": str(stage)},
                external=True)
    _typecheck(session, update="--update-baseline" in session.posargs)


TYPING_BASELINE = ROOT / "mypy-baseline.txt"


def _typecheck(session: nox.Session, update: bool) -> None:
    """mypy errors per source file may only go down: a file with more errors than the
    baseline lists fails the session, with those errors printed."""
    output = session.run(_python(session), "-m", "mypy", "-p", "thbench", external=True,
                         silent=True, success_codes=[0, 1]) or ""
    errors = _mypy_errors(output)
    counts = {path: len(lines) for path, lines in errors.items()}
    baseline = _read_baseline()
    grown = sorted(p for p, n in counts.items() if n > baseline.get(p, 0))
    for path in grown:
        print("\n".join(errors[path]))
    total, allowed = sum(counts.values()), sum(baseline.values())
    if grown and not (update and not TYPING_BASELINE.is_file()):  # only the first baseline
        session.error(f"mypy: more errors than {TYPING_BASELINE.name} allows in "
                      f"{', '.join(f'{p} ({counts[p]} > {baseline.get(p, 0)})' for p in grown)}")
    if update:
        lines = [f"{n} {p}" for p, n in sorted(counts.items())]
        TYPING_BASELINE.write_text(BASELINE_HEADER + "\n".join(lines) + "\n")
        session.log(f"mypy: {total} errors; {TYPING_BASELINE.name} rewritten")
    elif total < allowed:
        session.log(f"mypy: {total} errors, {allowed} allowed: shrink the baseline with "
                    "`nox -s lint -- --update-baseline`")
    else:
        session.log(f"mypy: {total} errors, as the baseline allows")


BASELINE_HEADER = """\
# mypy errors allowed per source file (`nox -s lint` fails when a file has more). It only
# shrinks: fix errors, then `nox -s lint -- --update-baseline`. Lines: count path.
"""


def _mypy_errors(output: str) -> dict[str, list[str]]:
    """mypy's error lines by source file (``eval/config.py``, not the link tree's path)."""
    import re

    folders = _package_dirs()
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"(?:.*/)?(thbench/\S+\.py):\d+: error: ", line)
        if not match:
            continue
        parts = match.group(1).removesuffix(".py").split("/")
        path = match.group(1)
        for cut in range(len(parts) - 1, 0, -1):  # the longest mapped package
            package = ".".join(parts[:cut])
            if package in folders:
                path = "/".join([folders[package], *parts[cut:]]) + ".py"
                break
        found.setdefault(path, []).append(path + line[match.end(1):])
    return found


def _read_baseline() -> dict[str, int]:
    if not TYPING_BASELINE.is_file():
        return {}
    counts = {}
    for line in TYPING_BASELINE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            count, path = line.split(maxsplit=1)
            counts[path] = int(count)
    return counts


def _installed_layout(folder: Path) -> Path:
    """Copies of the sources as a wheel lays them out (``thbench/``, ``thbench/eval/``, ...,
    from ``[tool.setuptools.package-dir]``): import-linter reads a package from one folder."""
    import shutil

    mapping = _package_dirs()
    shutil.rmtree(folder, ignore_errors=True)
    for package, source in mapping.items():
        target = folder.joinpath(*package.split("."))
        for file in (ROOT / source).rglob("*.py"):
            relative = file.relative_to(ROOT / source)
            if relative.parts[0] in mapping.values() or "__pycache__" in relative.parts:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, destination)
    return folder


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Throughput: where the runner's time goes, the face-geometry stages, each baseline's
    frames/s and HiDe-NeRF's ms/frame, memory and FLOPs; last, every method end to end in one
    table (ms per output frame with HiDe-NeRF's face analysis, setup, peak memory, GFLOP/s
    against the measured matmul peak)."""
    _run(session, "-m", "thbench.profiling.runner", *session.posargs)
    _run(session, "-m", "thbench.profiling.runner", "--frame-step", "1", "--clip-length", "64",
         *session.posargs)
    _run(session, "-m", "thbench.profiling.facegeom")
    _run(session, "-m", "thbench.profiling.scaling")
    _run(session, "-m", "thbench.profiling.baselines")
    _run(session, "-m", "thbench.profiling.hidenerf")
    _run(session, "-m", "thbench.profiling.endtoend")


@nox.session(venv_backend="none")
def gpu(session: nox.Session) -> None:
    """GPU acceptance (docs/performance.md): inference CUDA vs CPU per method, HiDe-NeRF paper
    and FOMM vox256 training under torchrun with a resume, evaluation rows CUDA vs CPU, speed;
    the reduced CPU form without CUDA. Exits non-zero on any mismatch."""
    _run(session, "-m", "thbench.profiling.gpu", *session.posargs)


@nox.session(venv_backend="none")
def leaderboard(session: nox.Session) -> None:
    """Rebuild leaderboards, tables and HTML of every run under runs/ from their result rows."""
    runs = sorted(str(p.parent) for p in ROOT.glob("runs/*/run.json"))
    if not runs:
        session.error("no run under runs/ (run `nox -s eval` first)")
    _run(session, "-m", "thbench", "reports", "build", *runs)


@nox.session(venv_backend="none")
def regress(session: nox.Session) -> None:
    """Fail when the embedded default got worse than reports/reference/default.csv (trained
    rows with the tolerances in reports/reference/default-tolerances.toml)."""
    _run(session, "-m", "thbench", "reports", "regress",
         "--reference", "reports/reference/default.csv",
         "--tolerances", "reports/reference/default-tolerances.toml",
         "--current", "runs/default/leaderboard.csv", *session.posargs)
