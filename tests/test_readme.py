"""The README stays short and true: at most 150 lines, its sections in order, its "add your
method" example runs as written; the layout table (docs/layout.md) matches the tree: every
folder it names installs as the package it says, every installed folder is in the table; and
every ``python -m thbench ...`` the README, a doc, card or config gives is a command or module
that exists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from thbench.__main__ import COMMANDS

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("datasets/cards/*.md"),
        *REPO.glob("configs/**/*.toml")]


def _layout_rows() -> list[tuple[list[str], list[str]]]:
    section = REPO.joinpath("docs", "layout.md").read_text().split("## Typing", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((re.findall(r"`([\w/]+)/`", cells[0]), re.findall(r"`([\w.]+)`", cells[1])))
    return rows


def test_layout_table_names_every_installed_folder_and_its_package() -> None:
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    folders = {folder: package for package, folder in package_dir.items()}
    rows = _layout_rows()
    assert {f for names, _ in rows for f in names} == set(folders)
    for names, packages in rows:
        for folder in names:
            assert (REPO / folder / "__init__.py").is_file(), folder
            assert folders[folder] in packages, (folder, packages)
        for package in packages:
            assert importlib.util.find_spec(package) is not None, package


def test_every_command_given_exists() -> None:
    commands, modules = set(), set()
    for path in DOCS:
        text = path.read_text()
        assert not re.search(r"-m (eval|datasets|reports|baselines|hidenerf|facegeom|benchcore)\b",
                             text), f"{path}: a command of the old layout"
        commands |= set(re.findall(r"-m thbench ([a-z]\w*)", text))
        modules |= set(re.findall(r"-m (thbench\.[\w.]+)", text))
    assert commands and commands <= set(COMMANDS), commands - set(COMMANDS)
    assert modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_readme_is_a_short_front_door() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    headers = re.findall(r"(?m)^## (.+)$", text)
    assert headers == ["Two commands", "What you get", "Add your method in 10 lines",
                       "Paper protocols", "Documentation"]
    assert "nox -s eval     # the benchmark on the embedded sample set" in text
    assert "nox -s tests    # the test suite" in text
    for link in re.findall(r'\]\(([^)#]+)\)|src="([^"]+)"', text):
        target = next(part for part in link if part)
        assert (REPO / target).is_file(), target
    for doc in REPO.glob("docs/*.md"):  # links between the docs resolve too
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), (doc.name, target)


def test_add_your_method_runs_as_written(tmp_path: Path, mini_dataset) -> None:
    """The README's class and config, copied as they are, score two pairs per protocol beside
    source-copy (on the test's small prepared dataset instead of the sample set)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Add your method in 10 lines", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    config = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()[0]
    assert command == "nox -s eval -- --config my-run.toml"  # the nox session's `eval run`
    class_lines = [line for line in code.splitlines()
                   if line.strip() and not line.strip().startswith(('"""', "#"))]
    assert len(class_lines) <= 10, class_lines
    (tmp_path / "my_method.py").write_text(code)
    (tmp_path / "my-run.toml").write_text(config)
    done = subprocess.run(
        [sys.executable, "-m", "thbench", "eval", "run", "--config", "my-run.toml",
         "--set", f"dataset.root={mini_dataset.root}", "--set", "dataset.name=mini"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "THB_PROGRESS": "0"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tables = (tmp_path / "runs" / "my-first-try" / "tables.md").read_text()
    assert "| blend |" in tables and "| source-copy |" in tables
    assert "Counts: 2 pairs" in tables
