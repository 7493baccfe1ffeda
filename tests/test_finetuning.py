"""Single-task PEFT methods: which parameters train, how they start, config validation, runs end to end."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.backbones import ViTBackbone
from pecft_lib.benchmarks import BenchmarkConfig
from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental
from pecft_lib.config import from_dict, load_config
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.methods.finetuning import (
    OptimConfig,
    PeftPrimerConfig,
    PEFTClassifier,
    SingleTaskConfig,
    TuningConfig,
    run_single_task,
)

WIDTH, DEPTH, CLASSES = 32, 2, 3


def backbone() -> ViTBackbone:
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=DEPTH, num_heads=2,
                            num_classes=0)
    return ViTBackbone(vit)


def trainable(model) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}


HEAD = WIDTH * CLASSES + CLASSES


@pytest.mark.parametrize(
    "tuning, expected",
    [
        (TuningConfig(method="linear_probe"), HEAD),
        (TuningConfig(method="prompt_tuning", prompt_length=5), 5 * WIDTH + HEAD),
        (TuningConfig(method="prefix_tuning", prefix_length=3, prefix_layers=[1]), 2 * 3 * WIDTH + HEAD),
        (TuningConfig(method="prefix_tuning", prefix_length=3), DEPTH * 2 * 3 * WIDTH + HEAD),
        (TuningConfig(method="lora", lora_rank=2, lora_targets=["q", "v"]), DEPTH * 2 * (2 * 2 * WIDTH) + HEAD),
        (TuningConfig(method="lora", lora_rank=2, lora_targets=["k"]), DEPTH * (2 * 2 * WIDTH) + HEAD),
    ],
)
def test_trainable_parameters_of_each_method(tuning, expected):
    model = PEFTClassifier(backbone(), CLASSES, tuning)
    assert sum(trainable(model).values()) == expected
    assert all(name.startswith("head.") for name in trainable(model)) == (tuning.method == "linear_probe")


def test_full_fine_tuning_trains_every_weight():
    model = PEFTClassifier(backbone(), CLASSES, TuningConfig(method="full"))
    assert sum(trainable(model).values()) == sum(p.numel() for p in model.parameters())


def test_lora_starts_at_the_pretrained_function():
    plain = PEFTClassifier(backbone(), CLASSES, TuningConfig(method="linear_probe"))
    lora = PEFTClassifier(backbone(), CLASSES, TuningConfig(method="lora"))
    lora.head.load_state_dict(plain.head.state_dict())
    images = torch.randn(4, 1, 8, 8)
    assert torch.allclose(lora(images), plain(images), atol=1e-6)  # B = 0 at initialisation


def test_tuning_config_errors_name_the_choices():
    with pytest.raises(UnknownNameError, match="unknown tuning method 'adapter'.*lora"):
        TuningConfig(method="adapter")
    with pytest.raises(ConfigError, match="subset of q, k, v"):
        TuningConfig(method="lora", lora_targets=["o"])
    with pytest.raises(ConfigError, match="n_experiences=1"):
        SingleTaskConfig(backbone="pecft-vit-tiny", benchmark=BenchmarkConfig(name="split_fashion_mnist"))
    with pytest.raises(ConfigError, match="no learning rate for \\['lora'\\]"):
        SingleTaskConfig(backbone="pecft-vit-tiny", benchmark=BenchmarkConfig(name="x", n_experiences=1),
                         optim=OptimConfig(lr={"full": 1e-4}), methods={"LoRA": TuningConfig(method="lora")})


def test_primer_config_has_both_profiles_and_every_method():
    for profile in ("quick", "paper"):
        cfg = load_config("peft_primer", PeftPrimerConfig, profile=profile)
        for experiment in (cfg.vision, cfg.text):
            assert {t.method for t in experiment.methods.values()} == {
                "linear_probe", "prompt_tuning", "prefix_tuning", "lora", "full"}
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TuningConfig, {"method": "lora", "rank": 4})


def tiny_image_benchmark():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(20)
    images = torch.randn(len(labels), 1, 8, 8, generator=generator) * 0.5 + labels.view(-1, 1, 1, 1).float()
    data = TensorClassificationDataset(images, labels)
    return make_class_incremental("tiny", data, data, n_experiences=1, class_order=list(range(CLASSES)),
                                  class_names=[str(c) for c in range(CLASSES)], info={})


def test_run_single_task_gives_one_record_per_method_and_is_deterministic():
    cfg = SingleTaskConfig(
        backbone="tiny", benchmark=BenchmarkConfig(name="tiny", n_experiences=1),
        optim=OptimConfig(epochs=3, batch_size=10, lr={"linear_probe": 0.05, "lora": 0.01}),
        methods={"probe": TuningConfig(method="linear_probe"), "LoRA": TuningConfig(method="lora", lora_rank=2)},
    )
    benchmark = tiny_image_benchmark()
    first = run_single_task(cfg, benchmark, backbone=backbone)
    second = run_single_task(cfg, benchmark, backbone=backbone)
    assert [r.name for r in first] == ["probe", "LoRA"]
    assert all(r.matrix.shape == (1, 1) for r in first)
    assert first[0].trainable_parameters == [HEAD]
    assert first[1].config["tuning"]["lora_rank"] == 2
    assert [r.matrix[0, 0] for r in first] == [r.matrix[0, 0] for r in second]
    assert first[0].matrix[0, 0] > 1 / CLASSES + 0.2  # the separable classes are learned
