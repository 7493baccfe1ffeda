"""L2P and the shared prompt skeleton: what is trained, where gradients go, selection, batch independence,
the query cache, determinism, configs and the paper's parameter count (Wang et al., CVPR 2022)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import TextEncoderBackbone, ViTBackbone
from pecft_lib.backbones.checkpoints import create_paper_vit
from pecft_lib.config import load_config
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.methods.l2p import L2PConfig, L2PModel, L2POptimConfig, L2PPresets, build_l2p
from pecft_lib.methods.prompting import majority_vote
from pecft_lib.methods.prompting import QueryCache
from pecft_lib.evaluation import run_strategy

from tiny_data import tiny_benchmark

WIDTH, CLASSES, EXPERIENCES = 32, 6, 3
SMALL = dict(pool_size=6, prompt_length=2, top_k=2)


def tiny_vit() -> ViTBackbone:
    torch.manual_seed(0)
    return ViTBackbone(VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=2,
                                         num_heads=2, num_classes=0))


def tiny_model(**overrides) -> L2PModel:
    model = L2PModel(tiny_vit(), CLASSES, L2PConfig(**{**SMALL, **overrides}))
    torch.manual_seed(1)
    return model


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def run_tiny(cache: bool = False, pull: float = 0.1, snapshots: list | None = None):
    """Train a tiny L2P on the tiny benchmark (2 epochs, batch 8); optionally snapshot the model after each task."""
    torch.manual_seed(0)
    model = tiny_model(pull_coefficient=pull)
    optim = L2POptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=2, eval_batch_size=64,
                           cache_queries=cache)
    strategy = build_l2p(model, optim, EXPERIENCES)
    benchmark = tiny_benchmark()
    if snapshots is None:
        record = run_strategy(strategy, benchmark, name="l2p", evaluate_untrained=False)
        return record, strategy
    for experience in benchmark.train_stream:
        snapshots.append(copy.deepcopy(model.state_dict()))
        strategy.train(experience)
    snapshots.append(copy.deepcopy(model.state_dict()))
    return None, strategy


def test_only_prompts_keys_and_head_are_trainable():
    model = tiny_model()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"prompts", "keys", "head.weight", "head.bias"}
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training


def test_gradient_reaches_selected_prompts_only_and_keys_only_through_the_pull():
    model = tiny_model()
    x, y = images(4), torch.tensor([0, 1, 2, 3])
    selected = set(model.prompt_ids(x).flatten().tolist())
    assert len(selected) < model.config.pool_size  # otherwise the test cannot fail
    F.cross_entropy(model(x), y).backward()
    assert model.keys.grad is None or torch.count_nonzero(model.keys.grad) == 0
    touched = {j for j in range(model.config.pool_size) if model.prompts.grad[j].abs().sum() > 0}
    assert touched == selected
    model.zero_grad(set_to_none=True)
    model(x)
    model.aux_loss.backward()
    assert model.prompts.grad is None or torch.count_nonzero(model.prompts.grad) == 0
    assert {j for j in range(model.config.pool_size) if model.keys.grad[j].abs().sum() > 0} == selected


def test_selection_and_pull_loss_match_a_direct_computation():
    model = tiny_model()
    x = images(5)
    q = model.backbone.query_features(x).double()
    cosine = F.normalize(q, dim=-1) @ F.normalize(model.keys.detach().double(), dim=-1).T
    assert torch.allclose(model.similarity(model.query(x)).double(), cosine, atol=1e-6)
    expected = [sorted(range(cosine.shape[1]), key=lambda j: -cosine[b, j].item())[:2] for b in range(5)]
    assert model.prompt_ids(x).tolist() == expected
    model(x)
    pull = torch.stack([cosine[b, ids].sum() for b, ids in enumerate(expected)]).mean()
    assert model.aux_loss.item() == pytest.approx(-0.1 * pull.item(), abs=1e-6)


def test_majority_vote_and_its_tie_order():
    assert majority_vote(torch.tensor([[3, 1], [3, 2], [2, 3]]), 5).tolist() == [3, 2]
    assert majority_vote(torch.tensor([[4, 1], [2, 0]]), 5).tolist() == [0, 1]  # all tied: lower ids first


def keyed_model(batchwise: bool) -> tuple[L2PModel, torch.Tensor]:
    """A model whose key j is the query of sample j (top-1 selection), so sample j picks prompt j."""
    model = tiny_model(top_k=1, batchwise_selection=batchwise)
    x = images(3)
    with torch.no_grad():
        model.keys[:3] = model.query(x)
    return model, x


def test_per_sample_selection_is_batch_independent():
    model, x = keyed_model(batchwise=False)
    batch = torch.cat([x[:1], x[:1], x[1:2]])
    assert model.prompt_ids(batch).flatten().tolist() == [0, 0, 1]
    together = model(batch)
    for row in range(len(batch)):
        assert torch.allclose(together[row], model(batch[row:row + 1])[0], atol=1e-5)


def test_batchwise_voting_leaks_the_batch_into_each_prediction():
    model, x = keyed_model(batchwise=True)
    batch = torch.cat([x[:1], x[:1], x[1:2]])
    assert model.prompt_ids(batch).flatten().tolist() == [0, 0, 0]  # sample 1 is outvoted
    assert model.prompt_ids(x[1:2]).flatten().tolist() == [1]
    assert not torch.allclose(model(batch)[2], model(x[1:2])[0], atol=1e-3)


def test_prompts_get_the_cls_position_embedding():
    x = images(2)
    copied, plain = tiny_model(), tiny_model(position_embedding="none")
    plain.load_state_dict(copied.state_dict())
    prompts = copied.prompts[copied.prompt_ids(x)].flatten(1, 2)
    expected = copied.head(copied.backbone.encode(x, prompts + copied.backbone.cls_position_embedding).prompts.mean(1))
    assert torch.allclose(copied(x), expected, atol=1e-6)
    assert not torch.allclose(copied(x), plain(x), atol=1e-4)


def test_train_mask_and_fresh_adam_leave_other_head_rows_bit_identical():
    snapshots: list = []
    run_tiny(snapshots=snapshots)
    per = CLASSES // EXPERIENCES
    for task in range(EXPERIENCES):
        before, after = snapshots[task], snapshots[task + 1]
        current = list(range(per * task, per * (task + 1)))
        others = [c for c in range(CLASSES) if c not in current]
        assert torch.equal(before["head.weight"][others], after["head.weight"][others])
        assert torch.equal(before["head.bias"][others], after["head.bias"][others])
        assert not torch.equal(before["head.weight"][current], after["head.weight"][current])
        assert not torch.equal(before["prompts"], after["prompts"])


def test_keys_move_only_with_the_pull_loss():
    for pull, moves in ((0.0, False), (0.1, True)):
        snapshots: list = []
        run_tiny(pull=pull, snapshots=snapshots)
        assert torch.equal(snapshots[0]["keys"], snapshots[-1]["keys"]) is not moves


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
    assert len(cached_strategy.query_cache) == 2 * 10  # the last experience: 2 classes x 10 samples
    assert len(plain_strategy.query_cache) == 0


def test_query_cache_computes_each_sample_once():
    calls = []

    def query(x):
        calls.append(len(x))
        return x.sum(1, keepdim=True)

    cache = QueryCache()
    x = torch.arange(8.0).view(4, 2)
    first = cache.lookup(torch.tensor([3, 1]), x[:2], query)
    second = cache.lookup(torch.tensor([1, 0, 3]), torch.stack([x[1], x[2], x[0]]), query)
    assert calls == [2, 1]
    assert torch.equal(second, torch.stack([first[1], x[2].sum(0, keepdim=True), first[0]]))


def test_config_errors():
    with pytest.raises(ConfigError, match="top_k"):
        L2PConfig(pool_size=4, top_k=5)
    with pytest.raises(UnknownNameError):
        L2PConfig(init="normal")
    with pytest.raises(ConfigError, match="grad_clip_norm"):
        L2POptimConfig(grad_clip_norm=0.0)
    bert = BertModel(BertConfig(vocab_size=30, hidden_size=WIDTH, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16), add_pooling_layer=False)
    with pytest.raises(ConfigError, match="position embedding"):
        L2PModel(TextEncoderBackbone(bert, pad_token_id=0), 4, L2PConfig(**SMALL))
    with pytest.raises(ConfigError, match="unknown key"):
        load_config("l2p", L2PPresets, "quick", overrides={"experiments.vision.method.pool": 3})


def test_presets_load_and_the_paper_recipe():
    quick = load_config("l2p", L2PPresets, "quick")
    assert quick.experiments["vision"].optim.cache_queries  # fixed tensors, no augmentation
    assert quick.experiments["text"].method.position_embedding == "none"  # MiniLM has no [CLS] position to copy
    paper = load_config("l2p", L2PPresets, "paper").experiments["cifar100"]
    assert paper.backbone == "vit_base_patch16_224.orig_in21k"
    assert (paper.method.pool_size, paper.method.prompt_length, paper.method.top_k) == (10, 5, 5)
    assert paper.method.pull_coefficient == 0.1 and not paper.method.batchwise_selection
    assert paper.optim.effective_lr == pytest.approx(0.001875)
    assert (paper.optim.epochs, paper.optim.grad_clip_norm, paper.optim.cache_queries) == (5, 1.0, False)


def test_paper_trainable_parameter_count():
    backbone = ViTBackbone(create_paper_vit("vit_base_patch16_224.orig_in21k", pretrained=False))
    model = L2PModel(backbone, 100, L2PConfig())
    counts = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert counts == {"prompts": 38_400, "keys": 7_680, "head.weight": 76_800, "head.bias": 100}


def test_evaluation_scope_seen_masks_the_classes_of_no_started_experience():
    inputs = images(5)
    every = tiny_model().eval()
    seen = tiny_model(eval_scope="seen").eval()
    seen.begin_experience([0, 1])
    with torch.no_grad():
        all_logits, seen_logits = every(inputs), seen(inputs)
    assert torch.equal(seen_logits[:, :2], all_logits[:, :2])
    assert torch.isinf(seen_logits[:, 2:]).all() and torch.isfinite(all_logits).all()
    seen.train()
    assert torch.isfinite(seen(inputs)).all()  # training logits are the train mask's business
    with pytest.raises(UnknownNameError):
        L2PConfig(eval_scope="current")


class _BatchMajority(torch.nn.Module):
    """Predicts, for every sample, the class its batch-mates look like most: leaks through the batch."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        guess = (x.mean(dim=(1, 2, 3)) * 2).round().clamp(0, CLASSES - 1).long()
        votes = torch.bincount(guess, minlength=CLASSES).float() * self.scale
        return votes.expand(len(x), -1)


def test_mixed_test_batches_expose_batch_leakage_and_leave_per_sample_models_alone():
    from pecft_lib.evaluation import accuracy_per_experience

    benchmark = tiny_benchmark()
    model = tiny_model().eval()
    single = accuracy_per_experience(model, benchmark, batch_size=7)
    assert np.array_equal(single, accuracy_per_experience(model, benchmark, batch_size=7, mixed=True))
    leaky = _BatchMajority()
    single, mixed = (accuracy_per_experience(leaky, benchmark, batch_size=20, mixed=m) for m in (False, True))
    assert single.shape == (EXPERIENCES,) and single.mean() > mixed.mean() + 0.2
