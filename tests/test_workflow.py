"""The GitHub Actions workflow: `make test` on every supported Python, the book built and published to Pages
from main only; actionlint checks it where it is installed (CI runs it in a job of its own)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def jobs(workflow) -> dict:
    return workflow["jobs"]


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True
    return workflow.get("on", workflow.get(True))


def _commands(job: dict) -> list[str]:
    """Every shell line the job's steps run, comments and blank lines dropped."""
    lines = []
    for step in job.get("steps", []):
        for line in str(step.get("run", "")).splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def _uses(job: dict) -> list[str]:
    return [step["uses"] for step in job.get("steps", []) if "uses" in step]


def _test_job(jobs: dict) -> dict:
    matching = [job for job in jobs.values() if "make test" in _commands(job)]
    assert len(matching) == 1, "exactly one job must run `make test`"
    return matching[0]


def test_runs_on_push_and_pull_request_to_main(workflow):
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["pull_request"]["branches"] == ["main"]


def test_the_test_job_runs_make_test_on_python_3_11_and_3_12(jobs):
    job = _test_job(jobs)
    versions = job["strategy"]["matrix"]["python-version"]
    # quoted: an unquoted 3.10 would be read as the number 3.1
    assert all(isinstance(v, str) for v in versions), versions
    assert {"3.11", "3.12"} <= set(versions)
    assert "make setup" in _commands(job) and _commands(job).index("make setup") < _commands(job).index("make test")
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] == 120
    # the matrix version is the interpreter the Makefile builds .venv with, and the one the container provides
    assert job["env"]["PYTHON"] == "python${{ matrix.python-version }}"
    assert "${{ matrix.python-version }}" in job["container"]["image"]


def test_the_matrix_is_what_pyproject_declares(jobs):
    """Every Python the package claims (requires-python, classifiers) is tested, and only those."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    versions = _test_job(jobs)["strategy"]["matrix"]["python-version"]
    allowed = SpecifierSet(project["requires-python"])
    assert [f"3.{m}" for m in range(8, 16) if Version(f"3.{m}.0") in allowed] == sorted(versions, key=Version)
    classified = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
                  if c.startswith("Programming Language :: Python :: 3.")}
    assert classified == set(versions)


def test_pip_is_cached_per_python_version(jobs):
    job = _test_job(jobs)
    (cache,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"] == job["env"]["PIP_CACHE_DIR"]
    assert "matrix.python-version" in cache["with"]["key"] and "hashFiles('pyproject.toml')" in cache["with"]["key"]


def test_the_book_is_built_without_execution_and_deployed_from_main_only(workflow, jobs):
    assert workflow["permissions"] == {"contents": "read"}  # least privilege unless a job asks for more
    builders = [job for job in jobs.values() if "make book-check" in _commands(job)]
    assert len(builders) == 1, "one job builds the book with `make book-check` (stored outputs, no execution)"
    (upload,) = [s for s in builders[0]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload["with"]["path"] == "_build/html"
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert upload["if"] == on_main

    (deploy,) = [job for job in jobs.values() if any(u.startswith("actions/deploy-pages@") for u in _uses(job))]
    assert deploy["if"] == on_main
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    needs = deploy["needs"] if isinstance(deploy["needs"], list) else [deploy["needs"]]
    names = {id(job): name for name, job in jobs.items()}
    assert names[id(builders[0])] in needs and names[id(_test_job(jobs))] in needs


def test_actionlint_accepts_the_workflow():
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (CI runs it in the workflow's `actionlint` job)")
    result = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
