"""Sequential LoRA / sequential fine-tuning / joint baselines on a tiny ViT, and the benchmark script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pecft_lib import bench
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.methods.baselines import BaselineConfig, run_baseline
from pecft_lib.methods.finetuning import TuningConfig

from test_inflora import CLASSES, EXPERIENCES, tiny_benchmark, tiny_vit

LORA = TuningConfig(method="lora", lora_rank=2, lora_alpha=2.0, lora_targets=["k", "v"])


def test_sequential_lora_trains_one_lora_through_every_experience_and_masks_other_classes():
    cfg = BaselineConfig(tuning=LORA, kind="sequential", lr=0.01, epochs=2, batch_size=8)
    first, _ = run_baseline(cfg, tiny_benchmark(), name="SeqLoRA", backbone=tiny_vit)
    matrix = first.matrix
    assert matrix.shape == (EXPERIENCES, EXPERIENCES)
    # the first experience is learned (chance is 1/6); the same LoRA parameters stay trainable throughout
    assert matrix[0, 0] > 0.5
    assert len(set(first.trainable_parameters)) == 1
    assert first.trainable_parameters[0] == 2 * 2 * (2 * 32 + 32 * 2) + 32 * CLASSES + CLASSES
    second = run_baseline(cfg, tiny_benchmark(), name="SeqLoRA", backbone=tiny_vit).record
    np.testing.assert_array_equal(first.matrix, second.matrix)


def test_joint_baseline_has_one_stage():
    cfg = BaselineConfig(tuning=TuningConfig(method="full"), kind="joint", lr=1e-3, epochs=2, batch_size=8)
    record, _ = run_baseline(cfg, tiny_benchmark(), name="Joint", backbone=tiny_vit)
    assert record.matrix.shape == (EXPERIENCES, 1) and record.metrics["A_mean"] is None
    assert record.metrics["A_last"] > 1 / CLASSES


def test_baseline_config_errors():
    with pytest.raises(UnknownNameError, match="baseline kind"):
        BaselineConfig(tuning=LORA, kind="replay")
    with pytest.raises(ConfigError, match="lora, full or linear_probe"):
        BaselineConfig(tuning=TuningConfig(method="prompt_tuning"))
    with pytest.raises(ConfigError, match="a Linear is not a backbone"):
        run_baseline(BaselineConfig(tuning=LORA), tiny_benchmark(), name="x", backbone=torch.nn.Linear(2, 2))


@pytest.mark.parametrize("method", list(bench.METHODS))
def test_bench_measures_a_quick_step(method):
    row = bench.measure_step(method, "quick", batch_size=4, steps=1, device="cpu", warmup=1)
    assert row.samples_per_second > 0 and row.peak_memory_mib > 0
    assert row.trainable_parameters > 0 and row.method == method
    assert "| " + method + " | quick |" in bench.markdown([row])


def test_bench_measures_the_subspace_work():
    result = bench.measure_inflora_subspace("quick", samples=8, batch_size=4, device="cpu")
    assert result["blocks"] == 6 and result["svd_seconds_per_task"] > 0


def test_bench_command_writes_a_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--methods", "InfLoRA", "--scales", "quick", "--batch-size", "2", "--steps", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| InfLoRA | quick | – | fp32 | cpu | 2 |" in printed and "subspace work (quick)" in printed
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["method"] == "InfLoRA" and "quick" in saved["inflora_subspace"]
    assert saved["rows"][0]["precision"] == "fp32" and "cpu_flags" in saved["hardware"]


def test_bench_measures_prompt_methods_with_and_without_the_query_cache(capsys):
    bench.main(["--methods", "L2P", "--scales", "quick", "--batch-size", "2", "--steps", "1"])
    printed = capsys.readouterr().out
    assert "| L2P | quick | off | fp32 | cpu | 2 |" in printed and "| L2P | quick | on | fp32 | cpu | 2 |" in printed
    with pytest.raises(ValueError, match="no prompt-free query"):
        bench.measure_step("InfLoRA", "quick", 2, 1, "cpu", warmup=0, query_cache=True)
