"""One method API: every method declares itself in its own package (``METHOD``), the code that handles every method
reads the registry instead of importing methods by name, every runner has the same call shape and return type,
and the API seeds a run as the ``pecft`` command does."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from pecft_lib.config import load_config
from pecft_lib.experiments import METHODS, resolve
from pecft_lib.methods import baselines, coda_prompt, dualprompt, inflora, l2p, olora
from pecft_lib.methods.registry import METHOD_PACKAGES
from pecft_lib.methods.spec import RunResult, default_seed

ROOT = Path(__file__).resolve().parent.parent / "pecft_lib"
RUNNERS = [l2p.run_l2p, dualprompt.run_dualprompt, coda_prompt.run_coda_prompt, inflora.run_inflora, olora.run_olora]
METHOD_NAMES = {"l2p", "dualprompt", "coda_prompt", "inflora", "olora", "baselines", "finetuning"}


@pytest.mark.parametrize("module", ["experiments.py", "cli.py", "training/state.py", "compat/__init__.py",
                                    "mechanisms.py"])
def test_shared_code_does_not_import_a_method_by_name(module):
    tree = ast.parse((ROOT / module).read_text())
    imported = {part for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                for part in [*node.module.split("."), *(alias.name for alias in node.names)]}
    assert not imported & METHOD_NAMES, f"{module} imports {sorted(imported & METHOD_NAMES)}"


def test_every_registered_package_declares_its_method():
    assert [spec.name for spec in METHODS.values()] == ["l2p", "dualprompt", "coda_prompt", "inflora", "olora",
                                                        "classic_cl", "peft_primer"]
    assert len(METHOD_PACKAGES) == len(METHODS)


@pytest.mark.parametrize("runner", [*RUNNERS, baselines.run_baseline, baselines.run_classic],
                         ids=lambda f: f.__name__)
def test_every_runner_has_the_same_call_shape_and_result(runner):
    parameters = inspect.signature(runner).parameters
    assert list(parameters)[:2] == ["cfg", "benchmark"]
    assert parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["seed"].default is None
    if runner is not baselines.run_classic:  # the classic strategies train their own MLP
        assert parameters["backbone"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(runner).return_annotation in ("RunResult", RunResult)


def test_the_api_seeds_a_run_as_the_command_line_does():
    paper = load_config("l2p", l2p.L2PPresets, "paper").experiments["cifar100"]
    assert default_seed(paper) == resolve("l2p:cifar100", "paper").seed == 42
    dual = load_config("dualprompt", dualprompt.DualPromptPresets, "paper").experiments["cifar100"]
    assert default_seed(dual) == resolve("dualprompt:cifar100", "paper").seed == 42
    text = load_config("olora", olora.OLoRAPresets, "quick").experiments["text"]
    assert default_seed(text) == resolve("olora:text", "quick").seed == text.seed


def test_a_run_without_benchmark_or_backbone_says_what_to_pass():
    from pecft_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="has no benchmark: pass one"):
        l2p.run_l2p(l2p.L2PExperimentConfig())
