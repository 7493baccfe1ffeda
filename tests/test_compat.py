"""Loading checkpoints of the official implementations (``pecft_lib.compat``): InfLoRA's ``SiNet``.

The reference-format state dicts are generated here with the reference's key names for a tiny ViT
(depth 2, width 32), and the expected logits come from a plain-torch re-implementation of
``SiNet.interface`` that reads the state dict directly (fused ``qkv``, ``k += Σ_t lora_B_k[t] lora_A_k[t] x``).
Parity with the authors' code itself (timm 0.6.7, ViT-B/16) was checked outside the test suite.
"""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.compat import from_reference
from pecft_lib.errors import CheckpointMismatchError, CheckpointNotFoundError, ConfigError, UnknownNameError
from pecft_lib.methods.inflora import InfLoRAModel
from pecft_lib.methods.inflora.reference import read_layout, to_reference_state_dict

WIDTH, HEADS, PATCH, IMAGE = 32, 2, 4, 8
ALLOCATED, LEARNED, CLASSES_PER_TASK, RANK = 4, 2, 5, 3


def tiny_vit(depth: int = 2) -> VisionTransformer:
    return VisionTransformer(img_size=IMAGE, patch_size=PATCH, embed_dim=WIDTH, depth=depth, num_heads=HEADS,
                             num_classes=0)


def reference_state_dict(
    depth: int = 2, layers: tuple[int, ...] = (0, 1), learned: int = LEARNED, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict with the key names of the reference's ``SiNet`` (``ALLOCATED`` pre-allocated tasks, the
    first ``learned`` with non-zero ``lora_B``), including the keys the loader must ignore."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    d, tokens = WIDTH, (IMAGE // PATCH) ** 2 + 1
    state = {
        "image_encoder.cls_token": rand(1, 1, d),
        "image_encoder.cls_token_grow": rand(1, 50, d),
        "image_encoder.pos_embed": rand(1, tokens, d),
        "image_encoder.pos_embed_grow": rand(1, tokens + 10, d),
        "image_encoder.patch_embed.proj.weight": rand(d, 3, PATCH, PATCH),
        "image_encoder.patch_embed.proj.bias": rand(d),
    }
    for block in range(depth):
        prefix = f"image_encoder.blocks.{block}."
        for norm in ("norm1", "norm2"):
            state[f"{prefix}{norm}.weight"], state[f"{prefix}{norm}.bias"] = 1 + rand(d), rand(d)
        for name, (rows, columns) in {"attn.qkv": (3 * d, d), "attn.proj": (d, d), "mlp.fc1": (4 * d, d),
                                      "mlp.fc2": (d, 4 * d)}.items():
            state[f"{prefix}{name}.weight"] = rand(rows, columns, scale=columns ** -0.5)
            state[f"{prefix}{name}.bias"] = rand(rows)
        if block in layers:
            for projection in "kv":
                for task in range(ALLOCATED):
                    state[f"{prefix}attn.lora_A_{projection}.{task}.weight"] = rand(RANK, d)
                    up = rand(d, RANK) if task < learned else torch.zeros(d, RANK)
                    state[f"{prefix}attn.lora_B_{projection}.{task}.weight"] = up
    state["image_encoder.norm.weight"], state["image_encoder.norm.bias"] = 1 + rand(d), rand(d)
    state["image_encoder.head.weight"], state["image_encoder.head.bias"] = rand(7, d), rand(7)
    for pool in ("classifier_pool", "classifier_pool_backup"):
        for task in range(ALLOCATED):
            state[f"{pool}.{task}.weight"] = rand(CLASSES_PER_TASK, d)
            state[f"{pool}.{task}.bias"] = rand(CLASSES_PER_TASK)
    return state


def reference_interface(state: dict[str, torch.Tensor], images: torch.Tensor, numtask: int) -> torch.Tensor:
    """``SiNet.interface`` computed from the state dict alone: [CLS] after the final norm, branches of tasks
    ``0 … numtask−1`` added to keys and values, logits of heads ``0 … numtask−1`` concatenated."""
    p = "image_encoder."
    x = F.conv2d(images, state[p + "patch_embed.proj.weight"], state[p + "patch_embed.proj.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    batch, depth = len(x), len({key.split(".")[2] for key in state if key.startswith(p + "blocks.")})
    x = torch.cat([state[p + "cls_token"].expand(batch, -1, -1), x], dim=1) + state[p + "pos_embed"]

    def norm(tokens: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(tokens, (WIDTH,), state[name + ".weight"], state[name + ".bias"], eps=1e-6)

    def linear(tokens: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(tokens, state[name + ".weight"], state[name + ".bias"])

    for block in range(depth):
        b = f"{p}blocks.{block}."
        h = norm(x, b + "norm1")
        q, k, v = linear(h, b + "attn.qkv").chunk(3, dim=-1)
        if f"{b}attn.lora_A_k.0.weight" in state:
            for t in range(numtask):
                k = k + h @ (state[f"{b}attn.lora_B_k.{t}.weight"] @ state[f"{b}attn.lora_A_k.{t}.weight"]).T
                v = v + h @ (state[f"{b}attn.lora_B_v.{t}.weight"] @ state[f"{b}attn.lora_A_v.{t}.weight"]).T
        q, k, v = (z.reshape(batch, -1, HEADS, WIDTH // HEADS).transpose(1, 2) for z in (q, k, v))
        attention = (q @ k.transpose(-2, -1) * (WIDTH // HEADS) ** -0.5).softmax(dim=-1)
        x = x + linear((attention @ v).transpose(1, 2).reshape(batch, -1, WIDTH), b + "attn.proj")
        x = x + linear(F.gelu(linear(norm(x, b + "norm2"), b + "mlp.fc1")), b + "mlp.fc2")
    features = norm(x, p + "norm")[:, 0]
    return torch.cat([linear(features, f"classifier_pool.{t}") for t in range(numtask)], dim=1)


def load(state: dict, **config) -> InfLoRAModel:
    return from_reference("inflora", state, source="inflora", backbone=config.pop("backbone", tiny_vit()), **config)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(1))


def test_key_mapping_round_trip():
    state = reference_state_dict()
    model = load(state)
    exported = to_reference_state_dict(model)
    untrained_tasks = tuple(f".{task}." for task in range(LEARNED, ALLOCATED))
    ignored = ("image_encoder.head.", "_grow", "classifier_pool_backup.", *untrained_tasks)
    loaded = {key: tensor for key, tensor in state.items() if not any(part in key for part in ignored)}
    assert sorted(exported) == sorted(loaded)
    assert all(torch.equal(exported[key], loaded[key]) for key in loaded)
    q, k, v = state["image_encoder.blocks.1.attn.qkv.weight"].chunk(3)
    attention = model.backbone.attention(1)
    assert torch.equal(attention.q.weight, q) and torch.equal(attention.k.base.weight, k)
    assert torch.equal(attention.v.base.weight, v)
    assert torch.equal(attention.v.down[1], state["image_encoder.blocks.1.attn.lora_A_v.1.weight"])
    assert torch.equal(attention.k.up[0], state["image_encoder.blocks.1.attn.lora_B_k.0.weight"])


@pytest.mark.parametrize("layers", [(0, 1), (0,)], ids=["all-blocks", "first-block-only"])
def test_logits_equal_the_reference_forward(images, layers):
    state = reference_state_dict(layers=layers)
    model = load(state)
    assert not model.training and not any(parameter.requires_grad for parameter in model.parameters())
    with torch.no_grad():
        logits = model(images)
    expected = reference_interface(state, images, numtask=LEARNED)
    assert logits.shape == (len(images), LEARNED * CLASSES_PER_TASK)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    without_branches = reference_interface({k: v for k, v in state.items() if "lora" not in k}, images, LEARNED)
    assert (expected - without_branches).abs().max() > 0.1  # the branches matter in this comparison


def test_layout_is_read_from_shapes():
    state = reference_state_dict(depth=3, layers=(0, 1))
    layout = read_layout(state)
    assert (layout.depth, layout.width, layout.rank, layout.layers) == (3, WIDTH, RANK, [0, 1])
    assert (layout.classes_per_task, layout.n_tasks) == (CLASSES_PER_TASK, LEARNED)
    model = load(state, backbone=tiny_vit(depth=3))
    assert model.layers == [0, 1] and model.config.rank == RANK
    assert model.heads.classes == [list(range(5)), list(range(5, 10))]
    assert type(model.backbone.attention(2).k) is torch.nn.Linear  # no branch in block 2


def test_n_tasks_is_inferred_from_non_zero_ups_and_can_be_overridden(images):
    state = reference_state_dict()
    state["image_encoder.blocks.0.attn.lora_B_k.1.weight"].zero_()  # task 1 still has ups elsewhere
    state["image_encoder.blocks.0.attn.lora_B_v.1.weight"].zero_()
    assert load(state).n_tasks == LEARNED
    first = load(state, n_tasks=1)  # the model as it was after the first task
    torch.testing.assert_close(first(images), reference_interface(state, images, numtask=1), atol=1e-5, rtol=1e-5)
    assert load(state, n_tasks=ALLOCATED).n_tasks == ALLOCATED  # allocated but untrained tasks load too
    with pytest.raises(CheckpointMismatchError, match=r"missing: .*lora_A_k\.4\.weight"):
        load(state, n_tasks=ALLOCATED + 1)
    with pytest.raises(CheckpointMismatchError, match="every lora_B of the state dict is zero"):
        load(reference_state_dict(learned=0))
    with pytest.raises(ConfigError, match="n_tasks must be at least 1"):
        load(state, n_tasks=0)


@pytest.mark.parametrize("wrap", [
    lambda state: state,
    lambda state: {f"module.{key}": value for key, value in state.items()},
    lambda state: {"state_dict": state},
    lambda state: {"model": {f"module.{key}": value for key, value in state.items()}},
    lambda state: {"tasks": 1, "model_state_dict": state},
], ids=["plain", "data-parallel", "state_dict", "model+data-parallel", "reference-save_checkpoint"])
def test_wrapped_and_prefixed_state_dicts(images, wrap):
    state = reference_state_dict()
    torch.testing.assert_close(load(wrap(state))(images), reference_interface(state, images, LEARNED),
                               atol=1e-5, rtol=1e-5)


def test_one_error_names_missing_unexpected_and_misshaped_keys():
    state = reference_state_dict()
    del state["image_encoder.blocks.1.mlp.fc1.bias"]
    state["image_encoder.blocks.0.attn.gate.weight"] = torch.zeros(3)
    state["image_encoder.blocks.0.attn.qkv.bias"] = torch.zeros(2 * WIDTH)
    with pytest.raises(CheckpointMismatchError) as error:
        load(state)
    message = str(error.value)
    assert "missing: image_encoder.blocks.1.mlp.fc1.bias (1)" in message
    assert "unexpected: image_encoder.blocks.0.attn.gate.weight (1)" in message
    assert "wrong shape: image_encoder.blocks.0.attn.qkv.bias (64,) instead of (96,) (1)" in message


def test_options_that_contradict_the_checkpoint_are_reported():
    state = reference_state_dict()
    misshaped_head = r"wrong shape: .*classifier_pool\.0\.weight \(5, 32\) instead of \(4, 32\)"
    with pytest.raises(CheckpointMismatchError, match=misshaped_head):
        load(state, classes_per_task=4)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected: image_encoder\.blocks\.1\.attn\.lora_A_k\.0"):
        load(state, layers=[0])
    with pytest.raises(CheckpointMismatchError, match="depth 2 and width 32, but the backbone vit has depth 3"):
        load(state, backbone=tiny_vit(depth=3))


def test_foreign_state_dicts_are_refused():
    with pytest.raises(CheckpointMismatchError, match="not a state dict of the InfLoRA reference"):
        load({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointMismatchError, match=r"the values of epoch \(1\) are not tensors"):
        load({**reference_state_dict(), "epoch": 3})


def test_unknown_method_or_source():
    with pytest.raises(UnknownNameError, match="unknown method with reference checkpoints 'olora'.*inflora"):
        from_reference("olora", {}, source="inflora")
    with pytest.raises(UnknownNameError, match="reference source for inflora 'l2p-pytorch'; valid choices: inflora"):
        from_reference("inflora", {}, source="l2p-pytorch")


def test_every_registered_loader_resolves_to_a_function():
    import importlib

    from pecft_lib.compat import reference_loaders

    assert set(reference_loaders()) >= {"inflora", "l2p", "dualprompt", "coda_prompt"}
    for method, sources in reference_loaders().items():
        for source, target in sources.items():
            module_name, function_name = target.split(":")
            assert callable(getattr(importlib.import_module(module_name), function_name)), (method, source)


def test_a_checkpoint_is_also_read_from_its_path(images, tmp_path):
    """A path works like the loaded dict (torch.save's format and safetensors); a missing file and a pickle with
    Python objects are refused with the fix, never unpickled."""
    from safetensors.torch import save_file

    state = reference_state_dict()
    expected = reference_interface(state, images, LEARNED)
    torch.save({"model_state_dict": state, "tasks": 1}, tmp_path / "checkpoint.pth")
    save_file({key: value.contiguous() for key, value in state.items()}, tmp_path / "model.safetensors")
    for path in (tmp_path / "checkpoint.pth", str(tmp_path / "model.safetensors")):
        model = from_reference("inflora", path, source="inflora", backbone=tiny_vit())
        torch.testing.assert_close(model(images), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        from_reference("inflora", tmp_path / "absent.pth", source="inflora")
    torch.save({"model_state_dict": state, "args": argparse.Namespace(lr=0.1)}, tmp_path / "with_objects.pth")
    with pytest.raises(CheckpointMismatchError, match="weights_only=False"):
        from_reference("inflora", tmp_path / "with_objects.pth", source="inflora")
