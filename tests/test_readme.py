"""The README's layout table and commands match the tree: every folder it names installs as the
package it says, every installed folder is in the table, and every ``python -m thbench ...``
it (or a doc, card or config) gives is a command or module that exists."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from thbench.__main__ import COMMANDS

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("datasets/cards/*.md"),
        *REPO.glob("configs/**/*.toml")]


def _layout_rows() -> list[tuple[list[str], list[str]]]:
    section = REPO.joinpath("README.md").read_text().split("## Layout", 1)[1]
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
