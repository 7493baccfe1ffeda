"""DualPrompt: what is trained, where gradients go, the carry-over copy, prefix semantics, selection, batch
independence, the query cache, determinism, configs and the paper's parameter count (Wang et al.,
ECCV 2022)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import TextEncoderBackbone, ViTBackbone
from pecft_lib.backbones.checkpoints import create_paper_vit
from pecft_lib.config import load_config
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.evaluation import run_strategy
from pecft_lib.methods.dualprompt import (
    DualPromptConfig,
    DualPromptModel,
    DualPromptOptimConfig,
    DualPromptPresets,
    build_dualprompt,
)

from tiny_data import tiny_benchmark

WIDTH, CLASSES, EXPERIENCES = 32, 6, 3
SMALL = dict(pool_size=3, e_length=2, e_layers=[1], g_length=3, g_layers=[0])


def tiny_vit() -> ViTBackbone:
    torch.manual_seed(0)
    return ViTBackbone(VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=2,
                                         num_heads=2, num_classes=0))


def tiny_model(**overrides) -> DualPromptModel:
    model = DualPromptModel(tiny_vit(), CLASSES, DualPromptConfig(**{**SMALL, **overrides}))
    torch.manual_seed(1)
    return model


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def keyed_model(**overrides) -> tuple[DualPromptModel, torch.Tensor]:
    """An untrained model whose key j is the query of sample j, so sample j selects E-prompt j at test time."""
    model = tiny_model(**overrides).eval()
    x = images(3)
    with torch.no_grad():
        model.keys.copy_(model.query(x))
    return model, x


def run_tiny(cache: bool = False, snapshots: list | None = None, **overrides):
    """Train a tiny DualPrompt on the tiny benchmark (2 epochs, batch 8); optionally snapshot after each task."""
    torch.manual_seed(0)
    model = tiny_model(**overrides)
    optim = DualPromptOptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=2, eval_batch_size=64,
                                  cache_queries=cache)
    strategy = build_dualprompt(model, optim, EXPERIENCES)
    benchmark = tiny_benchmark()
    if snapshots is None:
        return run_strategy(strategy, benchmark, name="dualprompt", evaluate_untrained=False), strategy
    for experience in benchmark.train_stream:
        snapshots.append(copy.deepcopy(model.state_dict()))
        strategy.train(experience)
    snapshots.append(copy.deepcopy(model.state_dict()))
    return None, strategy


def test_only_prompts_keys_and_head_are_trainable():
    model = tiny_model()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"g_prompt", "e_prompts", "keys", "head.weight", "head.bias"}
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training


def test_training_forces_the_current_tasks_prompt_and_only_it_its_key_g_and_head_get_gradient():
    model = tiny_model()
    model.begin_experience([0, 1])
    model.begin_experience([2, 3])
    model.train()
    x, y = images(4), torch.tensor([2, 3, 2, 3])
    assert model.prompt_ids(x).flatten().tolist() == [1] * 4
    loss = F.cross_entropy(model(x), y) + model.aux_loss
    loss.backward()
    assert {j for j in range(3) if model.e_prompts.grad[j].abs().sum() > 0} == {1}
    assert {j for j in range(3) if model.keys.grad[j].abs().sum() > 0} == {1}
    assert model.g_prompt.grad.abs().sum() > 0 and model.head.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    assert model.keys.grad is None  # keys learn from the pull loss only


def test_pull_loss_is_the_mean_cosine_to_the_selected_key():
    model = tiny_model(pull_coefficient=0.7)
    model.begin_experience([0, 1])
    x = images(5)
    q = model.backbone.query_features(x)
    model.train()
    model(x)
    assert model.aux_loss.item() == pytest.approx(-0.7 * F.cosine_similarity(q, model.keys[0:1]).mean().item(),
                                                  abs=1e-6)


def test_test_time_selection_is_the_per_sample_top1_cosine_over_the_whole_pool():
    model = tiny_model()
    model.begin_experience([0, 1])  # training started, but evaluation never uses the task
    x = images(7)
    cosine = F.normalize(model.query(x), dim=-1) @ F.normalize(model.keys.detach(), dim=-1).T
    model.eval()
    assert model.prompt_ids(x).flatten().tolist() == cosine.argmax(1).tolist()


def test_carry_over_copies_the_previous_e_prompt_but_not_its_key():
    for carry in (True, False):
        model = tiny_model(carry_over_previous_prompt=carry)
        model.begin_experience([0, 1])
        before = copy.deepcopy(model.state_dict())
        model.begin_experience([2, 3])
        assert torch.equal(model.e_prompts[1], before["e_prompts"][0]) is carry
        assert torch.equal(model.e_prompts[0], before["e_prompts"][0])
        assert torch.equal(model.e_prompts[2], before["e_prompts"][2])
        assert torch.equal(model.keys, before["keys"])


def test_during_task_t_only_e_prompt_t_and_key_t_change_and_other_head_rows_stay_bit_identical():
    snapshots: list = []
    run_tiny(snapshots=snapshots)
    per = CLASSES // EXPERIENCES
    for task in range(EXPERIENCES):
        before, after = snapshots[task], snapshots[task + 1]
        others = [j for j in range(EXPERIENCES) if j != task]
        assert torch.equal(before["e_prompts"][others], after["e_prompts"][others])
        assert torch.equal(before["keys"][others], after["keys"][others])
        if task > 0:  # slot t started as a copy of slot t-1, then trained
            assert not torch.equal(after["e_prompts"][task], before["e_prompts"][task - 1])
        assert not torch.equal(before["keys"][task], after["keys"][task])
        assert not torch.equal(before["g_prompt"], after["g_prompt"])
        current = list(range(per * task, per * (task + 1)))
        rest = [c for c in range(CLASSES) if c not in current]
        assert torch.equal(before["head.weight"][rest], after["head.weight"][rest])
        assert not torch.equal(before["head.weight"][current], after["head.weight"][current])


def test_prefixes_are_slot_0_keys_and_slot_1_values_of_the_selected_prompt():
    model, x = keyed_model(g_layers=[0, 1], g_length=2, e_layers=[1])  # block 1 gets [G; E]
    ids = model.prompt_ids(x).flatten()
    assert ids.tolist() == [0, 1, 2]
    for row, slot in enumerate(ids.tolist()):
        g, e = model.g_prompt, model.e_prompts[slot]
        prefixes = {0: (g[0, 0], g[0, 1]), 1: (torch.cat([g[1, 0], e[0, 0]]), torch.cat([g[1, 1], e[0, 1]]))}
        expected = model.head(model.backbone(x[row:row + 1], prefixes=prefixes))
        assert torch.allclose(model(x[row:row + 1]), expected, atol=1e-6)
        swapped = {0: (g[0, 0], g[0, 1]), 1: (torch.cat([g[1, 0], e[0, 1]]), torch.cat([g[1, 1], e[0, 0]]))}
        assert not torch.allclose(expected, model.head(model.backbone(x[row:row + 1], prefixes=swapped)), atol=1e-4)


def test_per_sample_selection_is_batch_independent():
    model, x = keyed_model()
    batch = torch.cat([x[:1], x[:1], x[1:3]])
    assert model.prompt_ids(batch).flatten().tolist() == [0, 0, 1, 2]
    together = model(batch)
    for row in range(len(batch)):
        assert torch.allclose(together[row], model(batch[row:row + 1])[0], atol=1e-5)


def test_batchwise_voting_leaks_the_batch_into_each_prediction():
    model, x = keyed_model(batchwise_selection=True)
    batch = torch.cat([x[:1], x[:1], x[1:2]])
    assert model.prompt_ids(batch).flatten().tolist() == [0, 0, 0]  # sample 1 is outvoted
    assert model.prompt_ids(x[1:2]).flatten().tolist() == [1]
    assert not torch.allclose(model(batch)[2], model(x[1:2])[0], atol=1e-3)


def test_pytorch_reshape_layout_scrambles_samples_as_the_reference_and_equals_jax_for_one_sample():
    jax, x = keyed_model()
    buggy = tiny_model(prefix_layout="pytorch_reshape").eval()
    buggy.load_state_dict(jax.state_dict())
    for row in range(3):
        assert torch.allclose(buggy(x[row:row + 1]), jax(x[row:row + 1]), atol=1e-6)
    ids = jax.prompt_ids(x).flatten()
    # sample b gets entry 2b (key) and 2b+1 (value) of the (slot, sample)-ordered list
    raw = [(slot, sample) for slot in (0, 1) for sample in range(3)]
    for b in range(3):
        (key_slot, key_sample), (value_slot, value_sample) = raw[2 * b], raw[2 * b + 1]
        prefixes = buggy.prefixes(ids[:, None])
        assert torch.equal(prefixes[1][0][b], jax.e_prompts[ids[key_sample], 0, key_slot])
        assert torch.equal(prefixes[1][1][b], jax.e_prompts[ids[value_sample], 0, value_slot])
    assert not torch.allclose(buggy(x), jax(x), atol=1e-3)


def test_query_cache_matches_the_uncached_path_and_runs_are_deterministic():
    """The cache changes only the batches q(x) is computed in. On the same machine a run is bit-identical to
    itself; against the uncached path the matrix kernels may round the queries differently in the last bits
    (measured up to 6e-8 in the trained parameters under MKL_CBWR=COMPATIBLE, 0 on the AVX2 default path), so
    parameters agree to 1e-5 and the accuracy matrix exactly."""
    plain, plain_strategy = run_tiny(cache=False)
    cached, cached_strategy = run_tiny(cache=True)
    again, again_strategy = run_tiny(cache=True)
    assert plain.accuracy_matrix == cached.accuracy_matrix == again.accuracy_matrix
    for (name, a), b, c in zip(cached_strategy.model.state_dict().items(), plain_strategy.model.state_dict().values(),
                               again_strategy.model.state_dict().values()):
        assert torch.equal(a, c), name
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)
    assert len(cached_strategy.query_cache) == 2 * 10
    assert plain_strategy.model.task == EXPERIENCES - 1


def test_text_backbone_takes_the_same_prefixes():
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=30, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16), add_pooling_layer=False)
    model = DualPromptModel(TextEncoderBackbone(bert, pad_token_id=0), 4, DualPromptConfig(**SMALL))
    tokens = torch.tensor([[2, 5, 7, 0, 0], [2, 9, 4, 11, 3]])
    model.begin_experience([0, 1])
    model.train()
    F.cross_entropy(model(tokens), torch.tensor([0, 1])).backward()
    assert model.e_prompts.grad[0].abs().sum() > 0 and model.g_prompt.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(tokens)[0], model(tokens[:1, :3])[0], atol=1e-5)  # padding stays invisible


def test_config_errors():
    with pytest.raises(ConfigError, match="pool_size"):
        build_dualprompt(tiny_model(pool_size=2), DualPromptOptimConfig(), EXPERIENCES)
    model = tiny_model(pool_size=1)
    model.begin_experience([0])
    with pytest.raises(ConfigError, match="pool_size"):
        model.begin_experience([1])
    with pytest.raises(ConfigError, match="do not exist"):
        tiny_model(e_layers=[2])
    with pytest.raises(ConfigError, match="distinct"):
        DualPromptConfig(g_layers=[0, 0])
    with pytest.raises(ConfigError, match="e_layers"):
        DualPromptConfig(e_layers=[])
    with pytest.raises(UnknownNameError):
        DualPromptConfig(init="normal")
    with pytest.raises(UnknownNameError):
        DualPromptConfig(prefix_layout="permute")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config("dualprompt", DualPromptPresets, "quick", overrides={"experiments.vision.method.pool": 3})


def test_presets_load_and_the_paper_recipe():
    quick = load_config("dualprompt", DualPromptPresets, "quick").experiments
    assert quick["vision"].optim.cache_queries
    assert quick["vision"].method.pool_size == quick["vision"].benchmark.n_experiences
    assert quick["text"].backbone == "all-MiniLM-L6-v2"
    paper = load_config("dualprompt", DualPromptPresets, "paper").experiments
    for name, e_length, lr, epochs in (("cifar100", 5, 0.0028125, 5), ("imagenet_r", 20, 0.00046875, 50)):
        experiment = paper[name]
        method, optim = experiment.method, experiment.optim
        assert experiment.backbone == "vit_base_patch16_224.orig_in21k"
        assert experiment.benchmark.seed == 42 and experiment.benchmark.n_experiences == 10
        assert experiment.benchmark.options["class_order"] == sorted(experiment.benchmark.options["class_order"])
        assert (method.pool_size, method.e_length, method.e_layers, method.g_length, method.g_layers) == (
            10, e_length, [2, 3, 4], 5, [0, 1])
        assert method.pull_coefficient == 1.0 and method.carry_over_previous_prompt
        assert not method.batchwise_selection and method.prefix_layout == "jax" and method.eval_scope == "all"
        assert optim.effective_lr == pytest.approx(lr) and optim.batch_size == 24
        assert (optim.epochs, optim.grad_clip_norm, optim.cache_queries) == (epochs, 1.0, False)


def test_paper_trainable_parameter_count():
    backbone = ViTBackbone(create_paper_vit("vit_base_patch16_224.orig_in21k", pretrained=False))
    model = DualPromptModel(backbone, 100, DualPromptConfig())
    counts = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert counts == {"g_prompt": 15_360, "e_prompts": 230_400, "keys": 7_680, "head.weight": 76_800,
                      "head.bias": 100}


def test_jax_init_ranges_and_zero_head():
    model = tiny_model(init="jax")
    for parameter in (model.g_prompt, model.e_prompts, model.keys):
        assert 0 <= parameter.min() and parameter.max() < 0.01
    assert not model.head.weight.any() and not model.head.bias.any()
    pytorch = tiny_model()
    assert pytorch.e_prompts.min() < -0.5 and pytorch.e_prompts.max() > 0.5
