"""InfLoRA: the designed subspace, the memory, interference with old inputs, parameter counts, freezing,
determinism (Liang & Li, CVPR 2024; liangyanshuo/InfLoRA, commit e08b00e)."""

from __future__ import annotations

import math

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import TextEncoderBackbone, ViTBackbone
from pecft_lib.backbones.checkpoints import create_paper_vit
from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental
from pecft_lib.config import from_dict
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.methods.common import reference_cosine_lr
from pecft_lib.methods.inflora import (
    InfLoRAConfig,
    InfLoRALinear,
    InfLoRAModel,
    InfLoRAOptimConfig,
    SubspaceMemory,
    build_inflora,
    design_down_projection,
    threshold_at,
)

import tiny_data

WIDTH, CLASSES, EXPERIENCES = 32, 6, 3


def low_rank_covariance(d: int, rank: int, seed: int) -> torch.Tensor:
    """Covariance of inputs that span ``rank`` random directions plus a little isotropic noise."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(500, rank, generator=generator, dtype=torch.float64) @ torch.randn(
        rank, d, generator=generator, dtype=torch.float64)
    x += 0.01 * torch.randn(500, d, generator=generator, dtype=torch.float64)
    return x.T @ x / len(x)


def tiny_vit() -> ViTBackbone:
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=2, num_heads=2,
                            num_classes=0)
    return ViTBackbone(vit)


def tiny_benchmark():
    return tiny_data.tiny_benchmark(per_class=12)


def run_tiny(design: str = "inflora", seed: int = 0):
    torch.manual_seed(seed)
    model = InfLoRAModel(tiny_vit(), CLASSES, InfLoRAConfig(rank=3, design=design))
    strategy = build_inflora(model, InfLoRAOptimConfig(lr=0.01, epochs=2, batch_size=8, eval_batch_size=36),
                             EXPERIENCES)
    benchmark = tiny_benchmark()
    snapshots = []
    for experience in benchmark.train_stream:
        strategy.train(experience)
        snapshots.append({name: p.detach().clone() for name, p in model.named_parameters()})
    return model, strategy, benchmark, snapshots


# --- the designed subspace and the memory ------------------------------------------------------------

def flat_covariance(d: int, seed: int) -> torch.Tensor:
    """A covariance whose energy is spread over all ``d`` directions (singular values 1 … 0.5)."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q @ torch.diag(torch.linspace(1.0, 0.5, d, dtype=torch.float64)) @ q.T


@pytest.mark.parametrize("kind", ["remove", "retain"])  # a flat spectrum stores more than d/2 directions
def test_designed_down_projection_is_orthogonal_to_the_stored_subspace(kind):
    d = 24
    covariance = low_rank_covariance(d, 4, seed=0) if kind == "remove" else flat_covariance(d, seed=0)
    memory = SubspaceMemory.from_first_task(covariance, 0.95)
    assert memory.kind == kind
    rank = min(4, d - memory.dim)
    down = design_down_projection(low_rank_covariance(d, 6, seed=1).float(), memory, rank=rank)
    old = memory.old_task_basis().float()
    assert down.shape == (rank, d) and down.dtype == torch.float32
    assert (down @ old).norm() / down.norm() <= 1e-5
    # rows are orthogonal with norm 1/sqrt(3), the reference's scaling
    torch.testing.assert_close(down @ down.T, torch.eye(rank) / 3, atol=1e-6, rtol=0)
    # more rows than the free subspace has dimensions cannot all be orthogonal to it: warned
    with pytest.warns(UserWarning, match="free"):
        design_down_projection(covariance, memory, rank=d - memory.dim + 1)


def test_first_task_memory_keeps_the_directions_below_the_energy_threshold():
    # covariance with singular values 4, 3, 2, 1 (energies 16, 9, 4, 1 of 30): cumulative 0.53, 0.83, 0.97, 1
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    covariance = q @ torch.diag(torch.tensor([4.0, 3, 2, 1], dtype=torch.float64)) @ q.T
    for threshold, expected in [(0.5, 1), (0.9, 2), (0.96, 2), (0.98, 3)]:
        memory = SubspaceMemory.from_first_task(covariance, threshold, dual=False)
        assert memory.dim == expected, threshold
        torch.testing.assert_close(memory.basis.abs(), q[:, :expected].abs())


def test_dual_gpm_grows_the_memory_and_switches_to_the_complement():
    d = 16
    memory = SubspaceMemory.from_first_task(low_rank_covariance(d, 3, seed=0), 0.99)
    dims = [memory.dim]
    for seed in range(1, 6):
        added = memory.update(flat_covariance(d, seed) if seed > 3 else low_rank_covariance(d, 3, seed=seed), 0.99)
        assert added >= 0
        dims.append(memory.dim)
        basis = memory.basis
        torch.testing.assert_close(basis.T @ basis, torch.eye(basis.shape[1], dtype=basis.dtype), atol=1e-9, rtol=0)
    assert dims == sorted(dims) and dims[-1] > d / 2
    assert memory.kind == "retain" and memory.basis.shape[1] == d - memory.dim
    # plain GPM never switches
    gpm = SubspaceMemory.from_first_task(flat_covariance(d, seed=0), 0.95, dual=False)
    assert gpm.kind == "remove" and gpm.dim > d / 2


def test_new_inputs_inside_the_memory_add_nothing():
    d = 12
    covariance = low_rank_covariance(d, 4, seed=0)
    memory = SubspaceMemory.from_first_task(covariance, 0.9)
    # the first task keeps the directions *below* the threshold (the reference's count), so the same
    # inputs once more add the direction that crosses it, and after that nothing
    assert memory.update(covariance, 0.9) == 1
    before = memory.basis.clone()
    assert memory.update(covariance, 0.9) == 0
    torch.testing.assert_close(memory.basis, before)


def test_threshold_schedule_and_learning_rate_schedule_follow_the_reference():
    assert [round(threshold_at(t, 10, 0.95), 4) for t in range(10)] == [
        0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995]
    assert reference_cosine_lr(0, 20) == 1.0
    assert reference_cosine_lr(19, 20) == pytest.approx(math.cos(99 * math.pi / 200), abs=1e-12)
    assert reference_cosine_lr(19, 20) == pytest.approx(0.0157, abs=1e-4)
    assert reference_cosine_lr(0, 1) == 1.0


# --- the branch ----------------------------------------------------------------------------------------

def test_one_step_on_up_is_the_full_gradient_projected_on_the_designed_rows():
    """Proposition 1: with up = 0, an SGD step on up changes W_eff by (−lr ∂L/∂W) downᵀ down."""
    torch.manual_seed(0)
    base = torch.nn.Linear(10, 7).double()
    layer = InfLoRALinear(base)
    layer.add_task(rank=3)
    rows, _ = torch.linalg.qr(torch.randn(10, 3, dtype=torch.float64))
    layer.set_down(rows.T / math.sqrt(3))
    x, target = torch.randn(16, 10, dtype=torch.float64), torch.randn(16, 7, dtype=torch.float64)

    full = torch.nn.Linear(10, 7).double()
    full.load_state_dict(base.state_dict())
    torch.nn.functional.mse_loss(full(x), target).backward()

    lr = 0.1
    torch.nn.functional.mse_loss(layer(x), target).backward()
    torch.optim.SGD([layer.up[0]], lr=lr).step()
    down = layer.down[0]
    torch.testing.assert_close(layer.delta_weight(), -lr * full.weight.grad @ down.T @ down, atol=1e-12, rtol=0)


def test_branch_forward_equals_the_merged_weight():
    torch.manual_seed(0)
    layer = InfLoRALinear(torch.nn.Linear(8, 5))
    for _ in range(3):
        layer.add_task(rank=2)
        layer.set_down(torch.randn(2, 8))
        with torch.no_grad():
            layer.up[-1].normal_()
    x = torch.randn(4, 6, 8)
    merged = x @ (layer.base.weight + layer.delta_weight()).T + layer.base.bias
    torch.testing.assert_close(layer(x), merged, atol=1e-5, rtol=1e-5)
    assert [p.requires_grad for p in layer.up] == [False, False, True]
    assert not any(p.requires_grad for p in layer.down)
    with pytest.raises(ValueError, match="must be"):
        layer.set_down(torch.randn(3, 8))


# --- the model and the strategy ----------------------------------------------------------------------

@pytest.mark.parametrize("layers, expected", [(None, 192_010), ([0, 1, 2, 3, 4], 84_490)])
def test_trainable_parameters_per_task_match_the_reference(layers, expected):
    """CIFAR-100, ViT-B/16, r = 10, 10-way head: 12·2·768·10 + 768·10 + 10 = 192,010 (the reference log's
    'Trainable params: 192010'); InfLoRA-b5 branches only the first 5 blocks."""
    vit = create_paper_vit("vit_base_patch16_224.augreg_in21k", pretrained=False)
    model = InfLoRAModel(ViTBackbone(vit), 100, InfLoRAConfig(rank=10, layers=layers))
    for task in range(2):
        model.begin_experience(range(10 * task, 10 * task + 10))
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_old_branches_and_heads_stay_bit_identical_and_runs_are_deterministic():
    model, strategy, _, snapshots = run_tiny()
    final = dict(model.named_parameters())
    for task, snapshot in enumerate(snapshots[:-1]):
        old = [name for name in snapshot if name.endswith((f"up.{task}", f"down.{task}"))
               or name.startswith(f"heads.heads.{task}.")]
        assert len(old) == 2 * 2 * 2 + 2  # 2 blocks × (k, v) × (up, down) + head weight and bias
        for name in old:
            assert torch.equal(final[name], snapshot[name]), name
    # the backbone never moves
    backbone = [name for name in final if ".base." in name or "attn.q." in name or "patch_embed" in name]
    assert backbone and all(torch.equal(final[name], snapshots[0][name]) for name in backbone)
    # the trained branches did move, and the memory grew
    assert all(final[f"backbone.vit.blocks.0.attn.k.up.{t}"].abs().sum() > 0 for t in range(EXPERIENCES))
    dims = [entry["memory_dims"] for entry in strategy.history]
    assert all(a <= b for first, second in zip(dims, dims[1:]) for a, b in zip(first, second))

    again, _, _, _ = run_tiny()
    for name, parameter in again.named_parameters():
        assert torch.equal(parameter, final[name]), name


def stored_input_interference(model: InfLoRAModel, memories, task: int) -> list[float]:
    """‖(up_t down_t) X‖ / ‖W X‖ for inputs X inside each block's stored old-task subspace (keys)."""
    ratios = []
    generator = torch.Generator().manual_seed(0)
    for layer, memory in zip(model.layers, memories):
        basis = memory.old_task_basis().float()
        inputs = torch.randn(64, basis.shape[1], generator=generator) @ basis.T
        branch, _ = model.branches(layer)
        delta = branch.up[task] @ branch.down[task]
        ratios.append(((inputs @ delta.T).norm() / (inputs @ branch.base.weight.T).norm()).item())
    return ratios


def test_new_branch_does_not_touch_inputs_of_the_stored_old_subspace():
    torch.manual_seed(0)
    model = InfLoRAModel(tiny_vit(), CLASSES, InfLoRAConfig(rank=3))
    strategy = build_inflora(model, InfLoRAOptimConfig(lr=0.01, epochs=2, batch_size=8, eval_batch_size=36),
                             EXPERIENCES)
    benchmark = tiny_benchmark()
    strategy.train(benchmark.train_stream[0])
    memories = [SubspaceMemory(m.basis.clone(), m.kind) for m in strategy.memories]  # memory after task 0
    strategy.train(benchmark.train_stream[1])
    assert max(stored_input_interference(model, memories, task=1)) <= 1e-5
    # the same check fails for a branch whose down-projection was not designed against the memory
    random_model, random_strategy, _, _ = run_tiny(design="random")
    assert min(stored_input_interference(random_model, memories, task=1)) > 1e-3


def test_covariance_of_a_text_encoder_ignores_padding():
    config = BertConfig(vocab_size=50, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16)
    torch.manual_seed(0)
    model = InfLoRAModel(TextEncoderBackbone(BertModel(config, add_pooling_layer=False), pad_token_id=0),
                         4, InfLoRAConfig(rank=2))
    short, long = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([[11, 12, 13, 14, 15, 16, 17, 18]])
    padded = torch.cat([torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], 1), long])
    together = model.input_covariances([padded])
    alone = [model.input_covariances([short]), model.input_covariances([long])]
    for layer in range(2):
        expected = (5 * alone[0][layer] + 8 * alone[1][layer]) / 13
        torch.testing.assert_close(together[layer], expected, atol=1e-6, rtol=1e-6)


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="threshold"):
        InfLoRAConfig(threshold=0.99, threshold_end=0.9)
    with pytest.raises(UnknownNameError, match="design"):
        InfLoRAConfig(design="orthogonal")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(InfLoRAConfig, {"rank": 10, "lora_rank": 10})
    with pytest.raises(ValueError, match="exceed"):
        InfLoRAModel(tiny_vit(), CLASSES, InfLoRAConfig(layers=[0, 5]))


def test_strategy_applies_the_reference_cosine_factor_per_epoch_and_a_fresh_optimizer_per_task():
    from avalanche.core import SupervisedPlugin

    class RecordLR(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.lrs, self.optimizers = [], []

        def before_training_epoch(self, strategy, **kwargs):
            self.lrs.append(strategy.optimizer.param_groups[0]["lr"])
            self.optimizers.append(id(strategy.optimizer))

    torch.manual_seed(0)
    model = InfLoRAModel(tiny_vit(), CLASSES, InfLoRAConfig(rank=2))
    recorder = RecordLR()
    strategy = build_inflora(model, InfLoRAOptimConfig(lr=0.01, epochs=3, batch_size=12, eval_batch_size=36),
                             EXPERIENCES, plugins=(recorder,))
    benchmark = tiny_benchmark()
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience)
    expected = [0.01 * reference_cosine_lr(epoch, 3) for epoch in range(3)]
    assert recorder.lrs == pytest.approx(expected * 2)
    assert len(set(recorder.optimizers)) == 2
    # the second task's optimizer holds only the second task's up matrices and head
    held = {id(p) for group in strategy.optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in model.parameters() if p.requires_grad}
    assert len(held) == 2 * 2 + 2  # 2 blocks × (k, v) up matrices + head weight and bias


def test_captured_energy_of_inputs_inside_and_outside_the_memory():
    d = 10
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    memory = SubspaceMemory(q[:, :3])
    # variances 4, 3, 2 inside the memory, 1 outside
    covariance = q[:, :4] @ torch.diag(torch.tensor([4.0, 3, 2, 1], dtype=torch.float64)) @ q[:, :4].T
    assert memory.captured_energy(covariance) == pytest.approx(9 / 10)
    assert memory.captured_energy(covariance, power=2) == pytest.approx(29 / 30)
    complement = SubspaceMemory(q[:, 3:], kind="retain")  # stores M^⊥: the same M
    assert complement.captured_energy(covariance) == pytest.approx(9 / 10)
    copied = memory.copy()
    copied.basis.zero_()
    assert memory.basis.abs().sum() > 0


def test_inflora_runs_on_a_text_encoder():
    config = BertConfig(vocab_size=40, hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16)
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)
    tokens = torch.randint(5, 40, (len(labels), 8))
    tokens[:, 1] = 1 + labels  # a class-revealing token
    tokens[::2, 6:] = 0  # padding
    data = TensorClassificationDataset(tokens, labels)
    benchmark = make_class_incremental("tiny text", data, data, n_experiences=2, class_order=[0, 1, 2, 3],
                                       class_names=list("abcd"), info={})
    model = InfLoRAModel(TextEncoderBackbone(BertModel(config, add_pooling_layer=False), pad_token_id=0), 4,
                         InfLoRAConfig(rank=2))
    strategy = build_inflora(model, InfLoRAOptimConfig(lr=0.01, epochs=3, batch_size=8, eval_batch_size=32), 2)
    for experience in benchmark.train_stream:
        strategy.train(experience)
    assert [len(entry["memory_dims"]) for entry in strategy.history] == [2, 2]
    assert model.n_tasks == 2 and torch.isfinite(model(tokens)).all()


def test_branch_interference_equals_a_direct_computation_on_the_first_block():
    from pecft_lib.methods.inflora import branch_interference

    model, _, benchmark, _ = run_tiny()
    images = torch.stack([benchmark.test_stream[0].dataset[i][0] for i in range(10)])
    with torch.no_grad():
        tokens, _ = model.backbone.embed(images)
        tokens = model.backbone.vit.blocks[0].norm1(tokens).reshape(-1, WIDTH)
        key, _ = model.branches(0)
        expected = ((tokens @ (key.up[1] @ key.down[1]).T).norm() / (tokens @ key.base.weight.T).norm()).item()
    measured = branch_interference(model, [images[:4], images[4:]], task=1)
    assert len(measured) == 2 and measured[0] == pytest.approx(expected, rel=1e-5)
    assert measured[0] > 0
