"""bf16 mixed precision: the configs' ``precision`` key, the autocast plugin, checkpoints, the bench switch, and a
bound on every method's and baseline's bf16 logits against float32 on a fixed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin
from timm.models.vision_transformer import VisionTransformer

from pecft_lib import bench
from pecft_lib.backbones import ViTBackbone
from pecft_lib.errors import CheckpointError, ConfigError
from pecft_lib.methods.baselines import BaselineConfig, TrainConfig
from pecft_lib.methods.coda_prompt import CodaPromptOptimConfig
from pecft_lib.methods.common import MixedPrecisionPlugin, strategy_precision
from pecft_lib.methods.dualprompt import DualPromptOptimConfig
from pecft_lib.methods.finetuning import OptimConfig as TuningOptimConfig
from pecft_lib.methods.finetuning import TuningConfig
from pecft_lib.methods.inflora import InfLoRAOptimConfig
from pecft_lib.methods.l2p import L2PConfig, L2PModel, L2POptimConfig, build_l2p
from pecft_lib.methods.olora import OLoRAOptimConfig
from pecft_lib.repro import seed_everything
from pecft_lib.training import run_resumable
from tiny_data import CLASSES, EXPERIENCES, tiny_benchmark

ROOT = Path(__file__).resolve().parent.parent
FIDELITY = ROOT / "data" / "bench" / "bf16-fidelity.json"

LOOP_CONFIGS = {
    "L2P": L2POptimConfig, "DualPrompt": DualPromptOptimConfig, "CODA-Prompt": CodaPromptOptimConfig,
    "InfLoRA": InfLoRAOptimConfig, "O-LoRA": OLoRAOptimConfig, "PEFT primer": TuningOptimConfig,
    "classic": TrainConfig, "baseline": lambda **kw: BaselineConfig(tuning=TuningConfig(method="full"), **kw),
}

LOGIT_BOUNDS = {
    "InfLoRA": 9e-3, "O-LoRA": 1e-2, "L2P": 4e-3, "DualPrompt": 6e-3, "CODA-Prompt": 9e-3,
    "SeqFT": 1.1e-2, "SeqLoRA": 1.4e-2, "Prototype": 7e-5,
}
"""Largest allowed |bf16 logit − fp32 logit| on ``bench.fixed_inputs("quick", 8)``: about twice the value that
``tools/measure_bf16_fidelity.py`` measured on an AMD EPYC without bfloat16 instructions (stored in
``data/bench/bf16-fidelity.json``, input ``fixed_random_8``: 1.6e-3 for L2P to 6.6e-3 for SeqLoRA, 3.4e-5 for
the prototype classifier, whose only bfloat16 part is the backbone). The margin covers other CPUs'
accumulation orders; a forward that left float32 elsewhere (e.g. a bfloat16 prompt selection) exceeds it."""


@pytest.mark.parametrize("name", LOOP_CONFIGS)
def test_every_loop_config_takes_fp32_or_bf16_and_refuses_the_rest(name):
    make = LOOP_CONFIGS[name]
    assert make().precision == "fp32"
    assert make(precision="bf16").precision == "bf16"
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, got 'float16'"):
        make(precision="float16")
    with pytest.raises(ConfigError, match="fp16 is not offered.*gradient scaler"):
        make(precision="fp16")


def _tiny_vit() -> ViTBackbone:
    return ViTBackbone(VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=16, depth=2, num_heads=2,
                                         num_classes=0))


def _build_l2p(precision: str, epochs: int = 1):
    seed_everything(0)
    model = L2PModel(_tiny_vit(), CLASSES, L2PConfig(pool_size=4, prompt_length=2, top_k=2))
    optim = L2POptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=epochs, eval_batch_size=64,
                           precision=precision)
    return build_l2p(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "l2p", "precision": precision}


class _Spy(SupervisedPlugin):
    """Records whether CPU autocast was on during each forward, and the dtype the criterion receives."""

    def __init__(self) -> None:
        super().__init__()
        self.autocast: list[bool] = []
        self.outputs: list[torch.dtype] = []

    def before_backward(self, strategy, **kwargs) -> None:
        self.outputs.append(strategy.mb_output.dtype)
        assert strategy.loss.dtype == torch.float32

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        self.outputs.append(strategy.mb_output.dtype)


def test_bf16_strategy_runs_the_forward_under_autocast_and_everything_else_in_float32():
    strategy, benchmark, _ = _build_l2p("bf16")
    assert strategy_precision(strategy) == "bf16"
    spy = _Spy()
    strategy.plugins.append(spy)
    seen_during_forward: list[bool] = []
    forward = strategy.model.forward

    def recording_forward(*args, **kwargs):
        seen_during_forward.append(torch.is_autocast_enabled("cpu"))
        return forward(*args, **kwargs)

    strategy.model.forward = recording_forward
    strategy.train(benchmark.train_stream[0])
    strategy.eval(benchmark.test_stream[:1])
    assert seen_during_forward and all(seen_during_forward)
    assert not torch.is_autocast_enabled("cpu")  # the region is left after every forward
    assert set(spy.outputs) == {torch.float32}
    parameters = [p for p in strategy.model.parameters() if p.requires_grad]
    assert {p.dtype for p in parameters} == {torch.float32}
    assert {state["exp_avg"].dtype for state in strategy.optimizer.state.values()} == {torch.float32}


def test_fp32_strategy_has_no_precision_plugin():
    strategy, _, _ = _build_l2p("fp32")
    assert strategy_precision(strategy) == "fp32"
    assert not any(isinstance(plugin, MixedPrecisionPlugin) for plugin in strategy.plugins)


def test_checkpoints_record_the_precision_and_resume_refuses_another(tmp_path):
    run_resumable(lambda: _build_l2p("bf16"), tmp_path, name="L2P")
    (tmp_path / "finished").unlink()  # a checkpoint at the end of the last experience, as if killed before the end
    with pytest.raises(CheckpointError, match="written by a bf16 run, this run is fp32; resume it with precision: bf16"):
        run_resumable(lambda: _build_l2p("fp32"), tmp_path, name="L2P", resume=True)


@pytest.mark.parametrize("method", list(LOGIT_BOUNDS))
def test_bf16_logits_stay_within_the_measured_bound(method):
    result = bench.measure_fidelity(method, bench.fixed_inputs("quick", 8))
    assert 0 < result.logit_max_abs_diff <= LOGIT_BOUNDS[method]  # > 0: the forward did run in bfloat16
    assert result.argmax_changes == 0
    if result.prompt_id_changes is not None:  # L2P, DualPrompt: the selection is computed in float32
        assert result.prompt_id_changes == 0
    if result.loss_fp32 is not None:
        assert result.loss_abs_diff < 1e-2 and result.grad_relative_error < 5e-2


@pytest.mark.parametrize("method", bench.PROMPT_METHODS)
def test_prompt_matching_stays_float32_under_bf16_autocast(method):
    factory, shape, per_experience, n_classes = bench.SCALES["quick"]
    model, _ = bench.METHODS[method](factory(), per_experience, n_classes)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        prompting = model.full_precision_prompts(model.query(bench.fixed_inputs("quick", 4)))
    tensors = [prompting.prompts, prompting.aux_loss, *(t for pair in prompting.prefixes.values() for t in pair)]
    assert {t.dtype for t in tensors if t is not None} == {torch.float32}


def test_the_stored_measurement_lies_within_the_bounds():
    rows = json.loads(FIDELITY.read_text())["inputs"]["fixed_random_8"]
    assert {row["method"] for row in rows} == set(LOGIT_BOUNDS)
    for row in rows:
        assert row["logit_max_abs_diff"] <= LOGIT_BOUNDS[row["method"]] / 1.5, row["method"]


def test_bench_measures_a_bf16_row():
    row = bench.measure_step("L2P", "quick", batch_size=2, steps=1, device="cpu", warmup=0, precision="bf16")
    assert row.precision == "bf16" and row.samples_per_second > 0
    assert "| L2P | quick | off | bf16 | cpu |" in bench.markdown([row])
