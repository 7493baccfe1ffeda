"""Bring your own benchmark and backbone: any class-incremental Avalanche benchmark through
ContinualBenchmark.from_avalanche, raw timm and Hugging Face models straight into the method models, and clear
errors for what does not fit."""

from __future__ import annotations

import re

import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import TextEncoderBackbone, ViTBackbone, as_backbone
from pecft_lib.benchmarks.base import ContinualBenchmark, TensorClassificationDataset
from pecft_lib.errors import ConfigError
from pecft_lib.evaluation import run_strategy
from pecft_lib.methods.inflora import InfLoRAConfig, InfLoRAModel
from pecft_lib.methods.l2p import L2PConfig, L2PModel, L2POptimConfig, build_l2p
from pecft_lib.methods.olora import OLoRAClassifier, OLoRAConfig

CLASSES = 6


def images(per_class: int, seed: int) -> TensorClassificationDataset:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(CLASSES).repeat_interleave(per_class)
    x = torch.randn(len(labels), 1, 8, 8, generator=generator) * 0.5 + labels.view(-1, 1, 1, 1).float() / 2
    return TensorClassificationDataset(x, labels)


def avalanche_benchmark(**options):
    return nc_benchmark(images(8, 0), images(4, 1), n_experiences=3, task_labels=False, seed=1, **options)


def raw_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=2, num_classes=5)


def raw_bert() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16, pad_token_id=0),
                     add_pooling_layer=False)


def test_an_avalanche_benchmark_becomes_a_continual_benchmark():
    scenario = avalanche_benchmark(class_ids_from_zero_from_first_exp=True)
    benchmark = ContinualBenchmark.from_avalanche(scenario, class_names=[f"c{i}" for i in range(CLASSES)])
    assert benchmark.n_experiences == 3 and benchmark.n_classes == CLASSES
    assert benchmark.class_order == [c for exp in scenario.train_stream for c in sorted(exp.classes_in_this_experience)]
    assert benchmark.describe()["source"] == "avalanche" and benchmark.name == "NCScenario"
    # the shuffled labels of a plain nc_benchmark are 0..N-1 too
    assert ContinualBenchmark.from_avalanche(avalanche_benchmark()).n_classes == CLASSES


def test_what_the_methods_cannot_use_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="class_ids_from_zero_in_each_exp=False"):
        ContinualBenchmark.from_avalanche(avalanche_benchmark(class_ids_from_zero_in_each_exp=True))
    with pytest.raises(ConfigError, match="2 class names for 6 classes"):
        ContinualBenchmark.from_avalanche(avalanche_benchmark(), class_names=["a", "b"])
    with pytest.raises(ConfigError, match="no train_stream"):
        ContinualBenchmark.from_avalanche(object())
    scenario = avalanche_benchmark()
    with pytest.raises(ConfigError, match="class_order covers only 0..3"):  # was an IndexError mid-training
        ContinualBenchmark("mine", scenario, [0, 1, 2, 3], ["a", "b", "c", "d"])


def test_raw_timm_and_hugging_face_models_are_wrapped_for_the_methods():
    assert isinstance(as_backbone(raw_vit()), ViTBackbone)
    text = as_backbone(raw_bert())
    assert isinstance(text, TextEncoderBackbone) and text.pad_token_id == 0 and text.name == "bert"
    already = ViTBackbone(raw_vit())
    assert as_backbone(already) is already
    x = torch.randn(3, 1, 8, 8)
    for model in (L2PModel(raw_vit(), CLASSES, L2PConfig(pool_size=4, prompt_length=2, top_k=2)),
                  InfLoRAModel(raw_vit(), CLASSES, InfLoRAConfig(rank=2)),
                  OLoRAClassifier(raw_vit(), CLASSES, OLoRAConfig(rank=2))):
        if hasattr(model, "begin_experience"):
            model.begin_experience([0, 1])
        assert model.eval()(x).shape[0] == 3
        trainable = [name for name, p in model.backbone.named_parameters() if p.requires_grad]
        assert all(re.search(r"lora|\.up\.", name) for name in trainable), trainable  # frozen but the adapters
    tokens = torch.tensor([[2, 5, 7, 0], [3, 4, 0, 0]])
    assert L2PModel(raw_bert(), CLASSES, L2PConfig(pool_size=4, prompt_length=2, top_k=2,
                                                   position_embedding="none")).eval()(tokens).shape == (2, CLASSES)
    with pytest.raises(ConfigError, match="a Linear is not a backbone the methods can use"):
        L2PModel(torch.nn.Linear(3, 3), CLASSES)


def test_a_method_trains_on_a_benchmark_and_backbone_the_library_did_not_define(single_thread):
    benchmark = ContinualBenchmark.from_avalanche(avalanche_benchmark(class_ids_from_zero_from_first_exp=True))
    torch.manual_seed(0)
    model = L2PModel(raw_vit(), benchmark.n_classes, L2PConfig(pool_size=4, prompt_length=2, top_k=2))
    strategy = build_l2p(model, L2POptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=1,
                                               eval_batch_size=32), benchmark.n_experiences)
    record = run_strategy(strategy, benchmark, name="l2p", evaluate_untrained=False)
    assert record.matrix.shape == (3, 3) and record.benchmark["source"] == "avalanche"
