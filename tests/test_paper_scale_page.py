"""book/paper_scale.md cannot go stale: every `pecft run`/`pecft resume` command on it (also under
`accelerate launch ... -m pecft_lib.cli`) parses with the CLI's own parser and resolves to an experiment (nothing
runs), every paper-profile experiment and run of the catalogue appears on it, and the numbers it labels
"reported by the paper" are the ones the method chapters cite."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import nbformat
import pytest

from pecft_lib.cli import build_parser, default_out_dir, parse_overrides
from pecft_lib.experiments import Experiment, catalogue, resolve

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "paper_scale.md"
ACCELERATE_MODULE = "pecft_lib.cli"
METHOD_CHAPTERS = ("l2p", "dualprompt", "coda_prompt", "inflora", "olora")


def shell_commands(markdown: str) -> list[list[str]]:
    """The ``pecft`` argument lists of the ```bash fences: ``pecft ARGS`` and
    ``accelerate launch ... -m pecft_lib.cli ARGS`` (comments dropped, ``\\`` continuations joined)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["pecft"]:
                commands.append(words[1:])
            elif words[:2] == ["accelerate", "launch"]:
                assert "-m" in words and words[words.index("-m") + 1] == ACCELERATE_MODULE, line
                commands.append(words[words.index("-m") + 2:])
    return commands


def parse(argv: list[str]):
    """The CLI's own parse of ``pecft ARGV``; a failed parse fails the test naming the command."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`pecft {shlex.join(argv)}` on {PAGE.name} does not parse (argparse's message is above)")


@pytest.fixture(scope="module")
def commands() -> list[list[str]]:
    found = shell_commands(PAGE.read_text())
    assert found, f"no pecft commands found in {PAGE}"
    return found


@pytest.fixture(scope="module")
def runs(commands: list[list[str]]) -> list[tuple[list[str], Experiment]]:
    """Every ``run`` command of the page with its resolved experiment."""
    resolved = []
    for argv in commands:
        args = parse(argv)
        if args.command == "run":
            resolved.append((argv, resolve(args.config, args.profile, parse_overrides(args.set), args.seed,
                                           args.method)))
    return resolved


def test_shell_commands_reads_pecft_and_accelerate_lines() -> None:
    page = ("```bash\npecft run l2p:cifar100 --profile paper   # a comment\n"
            "accelerate launch --num_processes 4 -m pecft_lib.cli run l2p:cifar100 \\\n  --profile paper\n"
            "ls runs\n```\n```python\npecft = 1\n```\n")
    assert shell_commands(page) == [["run", "l2p:cifar100", "--profile", "paper"],
                                    ["run", "l2p:cifar100", "--profile", "paper"]]


def test_every_command_parses_and_resolves(commands: list[list[str]], runs) -> None:
    for argv in commands:
        args = parse(argv)
        assert args.command in ("run", "resume", "list"), argv
        if args.command == "list":
            assert args.profile == "paper", argv
    for argv, experiment in runs:
        assert experiment.profile == "paper", f"{shlex.join(argv)} should run with --profile paper"


def test_every_resume_folder_is_the_output_of_a_run_on_the_page(commands: list[list[str]], runs) -> None:
    outputs = {Path(parse(argv).out or default_out_dir(experiment, dry_run=False))
               for argv, experiment in runs if "--dry-run" not in argv}
    resumed = [Path(parse(argv).dir) for argv in commands if argv[0] == "resume"]
    assert resumed
    assert not [folder for folder in resumed if folder not in outputs]


def test_every_paper_experiment_and_run_is_on_the_page(runs) -> None:
    on_page = {(experiment.method, experiment.experiment, experiment.run) for _, experiment in runs}
    dry_runs = {(experiment.method, experiment.experiment) for argv, experiment in runs if "--dry-run" in argv}
    expected = [(method, name, run) for method, experiments in catalogue("paper").items()
                for name, names in experiments.items() for run in names]
    assert expected
    assert not [address for address in expected if address not in on_page]
    # every experiment of the five methods has its dry run on the page
    method_experiments = {(method, name) for method, name, _ in expected if method in METHOD_CHAPTERS}
    assert not method_experiments - dry_runs


def test_every_paper_backbone_is_named_on_the_page() -> None:
    page = PAGE.read_text()
    for method, experiments in catalogue("paper").items():
        if method not in METHOD_CHAPTERS:  # the foundations' presets keep the quick profile's backbones
            continue
        for name in experiments:
            config = resolve(f"{method}:{name}", "paper").config
            backbone = getattr(config, "backbone", None) or getattr(config, "model", None)
            assert backbone and f"`{backbone}`" in page, f"{method}:{name} uses {backbone}, not named on the page"


def reported_section(markdown: str) -> str:
    start = markdown.index("## Reported by the papers")
    end = markdown.index("\n## ", start + 1)
    return markdown[start:end]


def test_reported_numbers_are_the_chapters_citations() -> None:
    chapters = " ".join(cell.source for chapter in METHOD_CHAPTERS
                        for cell in nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4).cells
                        if cell.cell_type == "markdown")
    section = reported_section(PAGE.read_text())
    numbers = re.findall(r"\b\d+\.\d+\b", section)
    assert len(numbers) >= 10
    assert not [number for number in numbers if number not in chapters]
    assert "reported by the paper" in section.lower()
