"""The distribution ships every package and data file the code needs (pyproject.toml lists them by hand)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_every_python_folder_is_a_listed_package() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    listed = set(setuptools["packages"])
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed, f"missing from pyproject.toml: {sorted(found - listed)}; stale: {sorted(listed - found)}"


def test_package_data_files_exist() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    for package, files in setuptools["package-data"].items():
        folder = REPO / mapping[package] if package in mapping else None
        if folder is None:
            parent = next(p for p in mapping if package.startswith(p + "."))
            folder = REPO / mapping[parent] / Path(*package[len(parent) + 1:].split("."))
        for name in files:
            assert (folder / name).is_file(), f"{package}: {name} is listed but missing"


def test_console_script_and_licence() -> None:
    project = _pyproject()["project"]
    assert project["scripts"]["loopbridge"] == "loopbridge.bridge.cli:main"
    assert project["license"] == "GPL-3.0-or-later"
    assert project["requires-python"] == ">=3.11"
