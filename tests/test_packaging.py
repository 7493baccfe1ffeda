"""Packaging: pins agree between pyproject.toml and environment.yml; CI and README give the two commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

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


SUPPORTED_PYTHONS = ["3.11", "3.12"]  # what CI tests; .github/workflows/ci.yml is checked against it too


def _minor_versions(low: int = 8, high: int = 16) -> list[str]:
    return [f"3.{minor}" for minor in range(low, high)]


def test_python_version_agrees(pyproject, environment):
    """requires-python, environment.yml's python and the classifiers name exactly the supported versions."""
    allowed = SpecifierSet(pyproject["project"]["requires-python"])
    assert [v for v in _minor_versions() if Version(f"{v}.0") in allowed] == SUPPORTED_PYTHONS
    (conda_python,) = [d for d in environment["dependencies"] if isinstance(d, str) and _name(d) == "python"]
    conda_allowed = SpecifierSet(conda_python.removeprefix("python"))
    assert [v for v in _minor_versions() if Version(f"{v}.0") in conda_allowed] == SUPPORTED_PYTHONS
    prefix = "Programming Language :: Python :: "
    classified = [c.removeprefix(prefix) for c in pyproject["project"].get("classifiers", [])
                  if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)]
    assert sorted(classified, key=Version) == SUPPORTED_PYTHONS


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


WHEEL_CHECK = """
import pathlib, sys
import pecft_lib
from pecft_lib.paths import REPO_ROOT, cache_dir
from pecft_lib.backbones.vit_tiny import load_vit_tiny, pretraining_report, probe_report
from pecft_lib.benchmarks.split_imagenet_r import load_split
from pecft_lib.benchmarks.debian_sections import section_texts
from pecft_lib.benchmarks.text_domains import DOMAINS
from pecft_lib.backbones import hybrid_glyphs, vit_glyphs
from pecft_lib.benchmarks.grey28_streams import SHA256 as GREY28_FILES, load_stream_file, stream_sources

site = pathlib.Path(sys.argv[1])
assert pathlib.Path(pecft_lib.__file__).is_relative_to(site), pecft_lib.__file__
assert REPO_ROOT is None, REPO_ROOT
assert cache_dir().is_relative_to(pathlib.Path.home()), cache_dir()
load_vit_tiny()  # sha256-checked package data
assert pretraining_report() and probe_report() and len(load_split().classes) == 200
assert len(section_texts()) == 10  # sha256-checked text samples
assert all(DOMAINS[name].texts(DOMAINS[name]) and DOMAINS[name].provenance() for name in ("fortunes", "spam"))
vit_glyphs.load_vit_glyphs()  # sha256-checked, with its reports
assert vit_glyphs.pretraining_report() and vit_glyphs.probe_report()
hybrid_glyphs.load_hybrid_glyphs()  # sha256-checked, stem included, with its reports
assert hybrid_glyphs.pretraining_report() and hybrid_glyphs.probe_report()
assert all(len(load_stream_file(name)["train_labels"]) for name in GREY28_FILES) and stream_sources()
print("package data ok")
"""


def test_the_wheel_is_self_contained_outside_the_repository(tmp_path):
    """Build the wheel, install it outside the repository and use it from another folder: package data (the
    offline ViTs, their reports, the ImageNet-R split, the image and text stream data), the per-user cache, `pecft list` and a
    small quick run."""
    python = Path(sys.executable)
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    quiet = dict(capture_output=True, text=True, timeout=300)
    source = tmp_path / "source"  # setuptools builds in the source tree: a copy keeps build/ out of the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "pecft_lib", source / "pecft_lib", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([str(python), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                            str(source)], **quiet)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("pecft_lib-*.whl")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
                               **quiet)
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {key: value for key, value in os.environ.items() if key != "PECFT_CACHE"}
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    env.pop("XDG_CACHE_HOME", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(python), *args], cwd=work, env=env, **quiet)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    assert "package data ok" in run("-c", WHEEL_CHECK, str(site)).stdout
    assert "l2p:vision" in run("-m", "pecft_lib.cli", "list").stdout
    out = run("-m", "pecft_lib.cli", "run", "l2p:vision", "--set", "benchmark.train_per_class=10", "--set",
              "benchmark.test_per_class=5", "--set", "optim.epochs=1", "--out", "run").stdout
    assert "l2p:vision/L2P [quick]: A_last" in out
    assert (work / "run" / "finished").is_file()


def test_cache_folder_is_pecft_cache_else_the_checkouts_data_cache(monkeypatch, tmp_path):
    from pecft_lib.paths import REPO_ROOT, cache_dir

    monkeypatch.setenv("PECFT_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("PECFT_CACHE")
    assert REPO_ROOT == ROOT and cache_dir() == ROOT / "data" / "cache"  # the wheel test covers the user cache


def test_make_test_checks_the_chapters_on_a_simulated_other_cpu():
    """The stored outputs come from the machine's own float path; nbval must run on another one (a CPU switch
    that no machine takes by default), so that a tolerance too tight for another CPU fails here, not on a user's."""
    makefile = (ROOT / "Makefile").read_text()
    simulated = re.search(r"^NBVAL_SIMULATED_CPU \?= (.+)$", makefile, re.MULTILINE)
    assert simulated, "the Makefile must define NBVAL_SIMULATED_CPU"
    switches = dict(item.split("=", 1) for item in simulated.group(1).split())
    assert switches and set(switches) <= {"MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"}
    recipe = makefile.split("\nunit-and-nbval:", 1)[1].split("\n\n", 1)[0]
    assert "env $(NBVAL_SIMULATED_CPU) $(BIN)/python -m pytest" in recipe and " book" in recipe
    assert re.search(r"^test:.*\bunit-and-nbval\b", makefile, re.MULTILINE)
    measured = re.search(r"^SPREAD_CPUS := (.+)$", makefile, re.MULTILINE).group(1).split()
    assert simulated.group(1) not in {cpu.split(":", 1)[1] for cpu in measured}  # checked on a CPU not measured
