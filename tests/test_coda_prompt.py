"""CODA-Prompt: component weights, prefixes, Gram–Schmidt groups, freezing, schedule, penalty, cache,
configs, the paper's parameter count and the reference-checkpoint loader (GT-RIPL/CODA-Prompt, commit 6417d4f)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import TextEncoderBackbone, ViTBackbone
from pecft_lib.backbones.checkpoints import create_paper_vit
from pecft_lib.config import load_config
from pecft_lib.errors import CheckpointMismatchError, ConfigError, UnknownNameError
from pecft_lib.evaluation import run_strategy
from pecft_lib.methods.coda_prompt import (
    CodaPromptConfig, CodaPromptModel, CodaPromptOptimConfig, CodaPromptPresets, build_coda_prompt,
    orthonormal_rows,
)
from pecft_lib.methods.coda_prompt.reference import from_reference_state_dict, to_reference_state_dict

from tiny_data import tiny_benchmark

WIDTH, CLASSES, EXPERIENCES = 32, 6, 3
SMALL = dict(n_components=6, prompt_length=4, layers=[0, 1])


def raw_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=2, num_heads=2,
                             num_classes=0)


def tiny_model(**overrides) -> CodaPromptModel:
    model = CodaPromptModel(ViTBackbone(raw_vit()), CLASSES, EXPERIENCES, CodaPromptConfig(**{**SMALL, **overrides}))
    torch.manual_seed(1)
    return model


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def perturb(model: CodaPromptModel, group: int, scale: float = 0.3) -> None:
    """Move a group's rows off orthonormality, as training does."""
    with torch.no_grad():
        for groups in model.components.values():
            for tensors in (groups.keys, groups.attention, groups.prompts):
                tensors[group].add_(scale * torch.randn_like(tensors[group]))


class LearningRates(SupervisedPlugin):
    """Records (experience, epoch, lr) at the start of every epoch, the optimizer's parameter count and the
    number of training iterations."""

    def __init__(self):
        super().__init__()
        self.lrs, self.optimized, self.iterations = [], [], 0

    def after_training_iteration(self, strategy, **kwargs):
        self.iterations += 1

    def before_training_epoch(self, strategy, **kwargs):
        self.lrs.append((strategy.clock.train_exp_counter, strategy.clock.train_exp_epochs,
                         strategy.optimizer.param_groups[0]["lr"]))
        self.optimized.append(sum(p.numel() for g in strategy.optimizer.param_groups for p in g["params"]))


def run_tiny(cache: bool = False, snapshots: list | None = None, plugins: tuple = (), epochs: int = 2,
             drop_last: bool = True):
    """Train a tiny CODA-Prompt on the tiny benchmark (batch 8); optionally snapshot it before each task."""
    torch.manual_seed(0)
    model = tiny_model()
    optim = CodaPromptOptimConfig(lr=0.01, batch_size=8, epochs=epochs, eval_batch_size=64, cache_queries=cache,
                                  drop_last=drop_last)
    strategy = build_coda_prompt(model, optim, EXPERIENCES, plugins=plugins)
    benchmark = tiny_benchmark()
    if snapshots is None:
        return run_strategy(strategy, benchmark, name="coda", evaluate_untrained=False), strategy
    for experience in benchmark.train_stream:
        snapshots.append(copy.deepcopy(model.state_dict()))
        strategy.train(experience)
    snapshots.append(copy.deepcopy(model.state_dict()))
    return None, strategy


def test_only_the_current_group_and_the_head_are_trainable():
    model = tiny_model()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    for task in range(EXPERIENCES):
        model.begin_experience([2 * task, 2 * task + 1])
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        assert trainable == {"head.weight", "head.bias"} | {
            f"components.{layer}.{kind}.{task}" for layer in (0, 1) for kind in ("keys", "attention", "prompts")}
        assert model.components_in_use == 2 * (task + 1)
    with pytest.raises(RuntimeError, match="3 tasks"):
        model.begin_experience([0])


def test_weights_prompt_and_key_value_split_match_a_direct_computation():
    model = tiny_model()
    model.begin_experience([0, 1])
    perturb(model, 0)
    model.begin_experience([2, 3])
    x = images(5)
    q = model.query(x).double().numpy()
    groups = model.components["1"]
    keys, attention, prompts = (torch.cat(list(t)).detach().double().numpy()
                                for t in (groups.keys, groups.attention, groups.prompts))
    qa = q[:, None, :] * attention[None]                                              # [B, f, D]
    alpha = np.einsum("bkd,kd->bk", qa / np.linalg.norm(qa, axis=-1, keepdims=True),
                      keys / np.linalg.norm(keys, axis=-1, keepdims=True))
    assert np.allclose(model.weights(model.query(x), 1).detach().double().numpy(), alpha, atol=1e-5)
    prompt = np.einsum("bk,kld->bld", alpha, prompts)                                   # p = Σ_j α_j P_j
    prefix_keys, prefix_values = model.make_prompts(model.query(x)).prefixes[1]
    assert np.allclose(prefix_keys.detach().double().numpy(), prompt[:, :2], atol=1e-5)
    assert np.allclose(prefix_values.detach().double().numpy(), prompt[:, 2:], atol=1e-5)
    prefixes = model.make_prompts(model.query(x)).prefixes
    expected = model.head(model.backbone.encode(x, prefixes=prefixes).cls)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_predictions_are_batch_independent():
    model = tiny_model()
    model.begin_experience([0, 1])
    model.eval()
    x = images(4)
    with torch.no_grad():
        together = model(x)
        for row in range(len(x)):
            assert torch.allclose(together[row], model(x[row:row + 1])[0], atol=1e-5)


def test_components_beyond_those_in_use_have_no_effect():
    model = tiny_model(init="orthogonal_at_start")  # every group exists from the start
    model.begin_experience([0, 1])
    x = images(4)
    before = model(x)
    perturb(model, 1, scale=5.0)
    perturb(model, 2, scale=5.0)
    assert torch.equal(model(x), before)
    model.begin_experience([2, 3])
    assert not torch.allclose(model(x), before, atol=1e-4)


def test_gram_schmidt_groups_are_orthonormal_to_the_earlier_rows():
    model = tiny_model()
    model.begin_experience([0, 1])
    perturb(model, 0)
    old = copy.deepcopy(model.components.state_dict())
    model.begin_experience([2, 3])
    for layer, groups in model.components.items():
        for kind in ("keys", "attention", "prompts"):
            tensors = getattr(groups, kind)
            assert len(tensors) == 2  # group 2 does not exist yet: the reference's zero rows
            earlier, new = tensors[0].detach().flatten(1).double(), tensors[1].detach().flatten(1).double()
            assert torch.equal(tensors[0], old[f"{layer}.{kind}.0"])
            assert torch.allclose(new.norm(dim=1), torch.ones(2, dtype=torch.float64), atol=1e-6)
            assert (new @ earlier.T).abs().max() < 1e-5
            assert (new @ new.T - torch.eye(2, dtype=torch.float64)).abs().max() < 1e-5
    with pytest.raises(ConfigError, match="orthogonal"):
        orthonormal_rows(torch.zeros(3, 4), 2)


def test_orthogonal_at_start_makes_all_components_orthonormal():
    groups = tiny_model(init="orthogonal_at_start").components["0"]
    keys = torch.cat(list(groups.keys)).detach().double()
    assert len(groups.keys) == EXPERIENCES
    assert torch.allclose(keys @ keys.T, torch.eye(6, dtype=torch.float64), atol=1e-5)


def test_training_leaves_old_components_and_other_head_rows_bit_identical_and_schedules_the_lr():
    snapshots: list = []
    rates = LearningRates()
    _, strategy = run_tiny(snapshots=snapshots, plugins=(rates,), epochs=3)
    for task in range(EXPERIENCES):
        before, after = snapshots[task], snapshots[task + 1]
        current = [2 * task, 2 * task + 1]
        others = [c for c in range(CLASSES) if c not in current]
        assert torch.equal(before["head.weight"][others], after["head.weight"][others])
        assert torch.equal(before["head.bias"][others], after["head.bias"][others])
        assert not torch.equal(before["head.weight"][current], after["head.weight"][current])
        for key in after:
            if key.startswith("components."):
                group = int(key.rsplit(".", 1)[1])
                if group < task:
                    assert torch.equal(before[key], after[key]), key
                elif group == task and key in before:  # group 0; later groups are created by their task
                    assert not torch.equal(before[key], after[key]), key
    expected = [(exp, epoch, 0.01 * math.cos(99 * math.pi * epoch / 400))
                for exp in range(EXPERIENCES) for epoch in range(3)]
    assert [(e, k) for e, k, _ in rates.lrs] == [(e, k) for e, k, _ in expected]  # restarts with every task
    assert [lr for *_, lr in rates.lrs] == pytest.approx([lr for *_, lr in expected])
    per_group = 2 * (2 * WIDTH + 2 * WIDTH + 2 * 4 * WIDTH)  # 2 layers x (K + A + P) of one group of 2
    assert set(rates.optimized) == {per_group + CLASSES * WIDTH + CLASSES}  # the current group and the head
    assert rates.iterations == EXPERIENCES * 3 * (20 // 8)  # drop_last: 2 full batches of 8 out of 20 samples


def test_orthogonality_penalty_matches_a_direct_computation_on_cpu():
    model = tiny_model(ortho_penalty=0.1)
    model.begin_experience([0, 1])
    perturb(model, 0)
    model.begin_experience([2, 3])
    model.train()
    model(images(3))

    def penalty(rows: torch.Tensor) -> torch.Tensor:
        return ((rows @ rows.T - torch.eye(len(rows))) ** 2).mean()

    expected = sum(penalty(torch.cat(list(t)).flatten(1)) for groups in model.components.values()
                   for t in (groups.keys, groups.attention, groups.prompts))
    assert model.aux_loss.item() == pytest.approx(0.1 * expected.item(), rel=1e-5)
    model.aux_loss.backward()
    assert model.components["0"].keys[1].grad.abs().sum() > 0
    assert model.components["0"].keys[0].grad is None  # earlier groups are frozen
    model.eval()
    model(images(3))
    assert model.aux_loss is None
    assert tiny_model().train().make_prompts(model.query(images(2))).aux_loss is None  # μ = 0: no term


def test_evaluation_scope_seen_masks_the_classes_of_no_started_experience():
    inputs = images(5)
    every, seen = tiny_model(eval_scope="all"), tiny_model()
    for model in (every, seen):
        model.begin_experience([0, 1])
        model.eval()
    with torch.no_grad():
        all_logits, seen_logits = every(inputs), seen(inputs)
    assert torch.equal(seen_logits[:, :2], all_logits[:, :2])
    assert torch.isinf(seen_logits[:, 2:]).all() and torch.isfinite(all_logits).all()


def test_query_cache_matches_the_uncached_path_and_runs_are_deterministic():
    """The cache changes only the batches q(x) is computed in. On the same machine a run is bit-identical to
    itself; against the uncached path the matrix kernels may round the queries differently in the last bits
    (measured up to 6e-8 in the trained parameters under MKL_CBWR=COMPATIBLE, 0 on the AVX2 default path), so
    parameters agree to 1e-5 and the accuracy matrix exactly."""
    plain, plain_strategy = run_tiny(cache=False, drop_last=False)
    cached, cached_strategy = run_tiny(cache=True, drop_last=False)
    again, again_strategy = run_tiny(cache=True, drop_last=False)
    assert plain.accuracy_matrix == cached.accuracy_matrix == again.accuracy_matrix
    for (name, a), b, c in zip(cached_strategy.model.state_dict().items(), plain_strategy.model.state_dict().values(),
                               again_strategy.model.state_dict().values()):
        assert torch.equal(a, c), name
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)
    assert len(cached_strategy.query_cache) == 2 * 10 and len(plain_strategy.query_cache) == 0
    # with drop_last, a sample dropped in epoch 1 gets its q(x) in a smaller batch later: equal up to round-off
    dropped, dropped_strategy = run_tiny(cache=False)
    cached, cached_strategy = run_tiny(cache=True)
    assert dropped.accuracy_matrix == cached.accuracy_matrix
    for (name, a), b in zip(dropped_strategy.model.state_dict().items(), cached_strategy.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_text_backbone_gets_prefixes_and_gradients():
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=30, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16), add_pooling_layer=False)
    model = CodaPromptModel(TextEncoderBackbone(bert, pad_token_id=0), 4, 2, CodaPromptConfig(**SMALL))
    model.begin_experience([0, 1])
    model.train()
    tokens = torch.tensor([[2, 5, 7, 0, 0], [3, 4, 6, 8, 9]])
    F.cross_entropy(model(tokens), torch.tensor([0, 1])).backward()
    assert model.components["1"].prompts[0].grad.abs().sum() > 0
    padded = torch.cat([tokens, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    model.eval()
    assert torch.allclose(model(tokens), model(padded), atol=1e-5)  # padding stays invisible to the prefixes


def test_config_errors():
    with pytest.raises(ConfigError, match="even"):
        CodaPromptConfig(prompt_length=5)
    with pytest.raises(ConfigError, match="layers"):
        CodaPromptConfig(layers=[])
    with pytest.raises(UnknownNameError):
        CodaPromptConfig(init="orthogonal")
    with pytest.raises(UnknownNameError):
        CodaPromptOptimConfig(schedule="step")
    with pytest.raises(ConfigError, match="multiple of the number of tasks"):
        CodaPromptModel(ViTBackbone(raw_vit()), CLASSES, 4, CodaPromptConfig(**SMALL))
    with pytest.raises(ConfigError, match="multiple of the number of tasks"):
        CodaPromptModel(ViTBackbone(raw_vit()), CLASSES, 8, CodaPromptConfig(**SMALL))
    with pytest.raises(ConfigError, match="at most 32 components"):
        CodaPromptModel(ViTBackbone(raw_vit()), CLASSES, 3, CodaPromptConfig(**{**SMALL, "n_components": 33}))
    with pytest.raises(ConfigError, match="do not all exist"):
        CodaPromptModel(ViTBackbone(raw_vit()), CLASSES, 3, CodaPromptConfig(**{**SMALL, "layers": [0, 2]}))
    with pytest.raises(ConfigError, match="unknown key"):
        load_config("coda_prompt", CodaPromptPresets, "quick", overrides={"experiments.vision.method.pool": 3})


def test_presets_load_and_the_paper_recipe():
    quick = load_config("coda_prompt", CodaPromptPresets, "quick").experiments
    assert quick["vision"].optim.cache_queries and quick["vision"].method.eval_scope == "seen"
    assert quick["text"].backbone == "all-MiniLM-L6-v2"
    paper = load_config("coda_prompt", CodaPromptPresets, "paper").experiments
    for name, epochs in (("cifar100", 20), ("imagenet_r", 50)):
        cfg = paper[name]
        assert cfg.backbone == "vit_base_patch16_224.augreg_in21k_ft_in1k"
        assert cfg.benchmark.n_experiences == 10 and cfg.benchmark.options["transform_recipe"] == "coda_prompt"
        assert cfg.benchmark.options["class_order"] == list(range(len(cfg.benchmark.options["class_order"])))
        assert (cfg.method.n_components, cfg.method.prompt_length, cfg.method.layers) == (100, 8, [0, 1, 2, 3, 4])
        assert (cfg.method.ortho_penalty, cfg.method.init, cfg.method.eval_scope) == \
            (0.0, "gram_schmidt_per_task", "seen")
        assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.schedule) == \
            (0.001, 128, epochs, "cosine")
        assert (cfg.optim.weight_decay, cfg.optim.grad_clip_norm, cfg.optim.cache_queries) == (0.0, None, False)


def test_paper_trainable_parameter_count_per_task():
    backbone = ViTBackbone(create_paper_vit("vit_base_patch16_224.augreg_in21k_ft_in1k", pretrained=False))
    model = CodaPromptModel(backbone, 100, 10)
    model.begin_experience(range(10))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 5 * (10 * 8 * 768 + 2 * 10 * 768) + 76_800 + 100  # 384,000 components + head
    model.begin_experience(range(10, 20))
    components = sum(p.numel() for name, p in model.named_parameters() if name.startswith("components."))
    assert components == 2 * 384_000  # 3.84 M after all 10 tasks


def test_reference_loader_round_trip_and_mismatch_errors():
    model = tiny_model()
    for task in range(2):
        model.begin_experience([2 * task, 2 * task + 1])
        perturb(model, task)
    model.eval()
    state = {key: tensor.clone() for key, tensor in to_reference_state_dict(model).items()}
    assert state["prompt.e_p_0"].shape == (6, 4, WIDTH) and not state["prompt.e_k_1"][4:].any()
    loaded = from_reference_state_dict(state, n_tasks=EXPERIENCES, backbone=raw_vit())
    assert loaded.task == 1 and loaded.seen_classes == [0, 1, 2, 3] and not loaded.training
    x = images(4)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
        earlier = from_reference_state_dict(state, n_tasks=EXPERIENCES, tasks_started=1, backbone=raw_vit())
        assert earlier.components_in_use == 2 and torch.isinf(earlier(x)[:, 2:]).all()
    with pytest.raises(ConfigError, match="n_tasks"):
        from_reference_state_dict(state, backbone=raw_vit())
    with pytest.raises(ConfigError, match="divide"):
        from_reference_state_dict(state, n_tasks=4, backbone=raw_vit())
    broken = dict(state)
    del broken["feat.norm.weight"]
    broken["feat.extra"] = torch.zeros(1)
    broken["last.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointMismatchError, match="missing: feat.norm.weight.*unexpected: feat.extra.*wrong shape"):
        from_reference_state_dict(broken, n_tasks=EXPERIENCES, backbone=raw_vit())
    with pytest.raises(CheckpointMismatchError, match="depth"):
        from_reference_state_dict(state, n_tasks=EXPERIENCES)  # the default backbone is ViT-B/16
    with pytest.raises(CheckpointMismatchError, match="ViTZoo"):
        from_reference_state_dict({"last.weight": torch.zeros(2, 2)}, n_tasks=1)
