"""Packaging: pins agree between pyproject.toml and environment.yml; CI and README give the two commands."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def pyproject_pins(pyproject) -> list[str]:
    project = pyproject["project"]
    pins = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        pins.extend(group)
    return pins


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def conda_pip_pins(environment) -> list[str]:
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict) and "pip" in entry]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: list"
    return list(pip_sections[0])


def _normalize(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement)


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[;]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_pyproject_pin_is_in_environment_yml(pyproject_pins, conda_pip_pins):
    conda = {_normalize(r) for r in conda_pip_pins}
    missing = [r for r in pyproject_pins if _normalize(r) not in conda]
    assert not missing, f"pins of pyproject.toml absent from (or different in) environment.yml: {missing}"


def test_environment_yml_has_no_extra_pip_packages(pyproject_pins, conda_pip_pins):
    extra = {_name(r) for r in conda_pip_pins} - {_name(r) for r in pyproject_pins}
    assert not extra, f"environment.yml installs packages pyproject.toml does not declare: {sorted(extra)}"
    assert len(conda_pip_pins) == len(set(map(_name, conda_pip_pins))), "a package is listed twice"


@pytest.mark.parametrize("pin", ["torch==2.14.1", "torchvision==0.29.1", "avalanche-lib==0.6.0"])
def test_core_pins(pin, pyproject, conda_pip_pins):
    assert pin in pyproject["project"]["dependencies"]
    assert pin in conda_pip_pins


def test_python_version_agrees(pyproject, environment):
    assert pyproject["project"]["requires-python"] == ">=3.11,<3.12"
    assert "python=3.11" in environment["dependencies"]


def test_test_extra_has_pytest_xdist_and_nbval(pyproject):
    names = {_name(r) for r in pyproject["project"]["optional-dependencies"]["test"]}
    assert {"pytest", "pytest-xdist", "nbval"} <= names


def test_ci_entry_point_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert ci.is_file()
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    lines = ci.read_text().splitlines()
    assert lines[0].startswith("#!")
    commands = [line.strip() for line in lines[1:] if line.strip() and not line.strip().startswith("#")]
    assert "make test" in commands
    assert "set -euo pipefail" in commands  # a failing step fails CI


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make book\b", readme, re.MULTILINE)
    assert re.search(r"^make test\b", readme, re.MULTILINE)


def test_makefile_has_the_two_targets():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^book:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


def _check_free_space(*args: str) -> subprocess.CompletedProcess:
    script = ROOT / "tools" / "check_free_space.sh"
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_free_space_check_passes_with_room_and_fails_with_the_numbers(tmp_path):
    assert _check_free_space("0", str(tmp_path)).returncode == 0
    short = _check_free_space("1000000", str(tmp_path))  # a million GiB: no disk here has that
    assert short.returncode == 1
    assert re.search(r"only \d+\.\d GiB free on the disk holding .*needs about 1000000 GiB", short.stderr)
    assert "SETUP_MIN_FREE_GIB=0" in short.stderr  # says how to go on anyway


def test_free_space_check_rejects_bad_arguments(tmp_path):
    assert _check_free_space("nine", str(tmp_path)).returncode == 2
    missing = _check_free_space("1", str(tmp_path / "absent"))
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_first_install_checks_free_space_before_pip():
    recipe = (ROOT / "Makefile").read_text().split("$(VENV)/.installed: pyproject.toml", 1)[1]
    assert recipe.index("tools/check_free_space.sh") < recipe.index("pip install")
