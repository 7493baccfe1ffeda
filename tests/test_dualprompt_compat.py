"""Loading checkpoints of PyTorch DualPrompt (JH-LEE-KR/dualprompt-pytorch) into :class:`DualPromptModel`.

The reference-format state dicts are generated here with the reference's key names and shapes for a tiny ViT
(depth 3, width 32, 2 heads), and the expected outputs come from a plain-torch re-implementation of the
reference's test-time forward that reads the state dict directly (fused ``qkv``, prompts as
``(layers, 2, pool, length, heads, head_dim)``, the reshape of ``prompt.py`` including its batch scrambling).
Parity with the reference code itself (timm 0.6.7, a random depth-6 ViT) was checked outside the test suite.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.backbones import ViTBackbone
from pecft_lib.errors import CheckpointMismatchError, ConfigError
from pecft_lib.methods.dualprompt import DualPromptConfig, DualPromptModel
from pecft_lib.methods.dualprompt.reference import from_reference_state_dict, to_reference_state_dict

WIDTH, HEADS, PATCH, IMAGE, DEPTH, CLASSES = 32, 2, 4, 8, 3, 6
POOL, E_LENGTH, G_LENGTH = 4, 3, 2  # G at block 0, E at blocks 1-2 (the loader's default positions)


def reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the key names and prompt shapes of the reference's ``VisionTransformer``."""
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=IMAGE, patch_size=PATCH, in_chans=1, embed_dim=WIDTH, depth=DEPTH,
                            num_heads=HEADS, num_classes=CLASSES)
    state = {key: tensor for key, tensor in vit.state_dict().items()}
    head_dim = WIDTH // HEADS
    state["g_prompt"] = torch.rand(1, 2, G_LENGTH, HEADS, head_dim) * 2 - 1
    state["e_prompt.prompt"] = torch.rand(2, 2, POOL, E_LENGTH, HEADS, head_dim) * 2 - 1
    state["e_prompt.prompt_key"] = torch.rand(POOL, WIDTH) * 2 - 1
    state["head.weight"] = torch.randn(CLASSES, WIDTH) * 0.5
    return state


def images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, task: int | None = None):
    """The reference's ``forward(x, cls_features=q, train=task is not None)``: ``(logits, prompt_idx)``."""
    def blocks(tokens, prompts):
        for i in range(DEPTH):
            p = f"blocks.{i}."
            h = F.layer_norm(tokens, (WIDTH,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
            b, n, _ = h.shape
            qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
            q, k, v = qkv.reshape(b, n, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
            if i in prompts:  # [B, 2, L, H, d] → 2, B, H, L, d (attention.py)
                prompt = prompts[i].permute(1, 0, 3, 2, 4)
                k, v = torch.cat([prompt[0], k], dim=2), torch.cat([prompt[1], v], dim=2)
            attention = (q @ k.transpose(-2, -1) * (WIDTH // HEADS) ** -0.5).softmax(-1)
            out = (attention @ v).transpose(1, 2).reshape(b, n, WIDTH)
            tokens = tokens + F.linear(out, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
            h = F.layer_norm(tokens, (WIDTH,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
            h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                         sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
            tokens = tokens + h
        return F.layer_norm(tokens, (WIDTH,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)[:, 0]

    patches = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
    tokens = torch.cat([sd["cls_token"].expand(len(x), -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
    tokens = tokens + sd["pos_embed"]
    query = blocks(tokens, {})
    keys = sd["e_prompt.prompt_key"]
    similarity = F.normalize(query, dim=-1, eps=1e-6) @ F.normalize(keys, dim=-1, eps=1e-6).T
    idx = similarity.argmax(1, keepdim=True) if task is None else torch.full((len(x), 1), task)
    raw = sd["e_prompt.prompt"][:, :, idx]  # layers, 2, B, 1, L, H, d
    e_prompt = raw.reshape(raw.shape[0], len(x), 2, *raw.shape[4:])  # prompt.py: reshape, no permute
    prompts = {0: sd["g_prompt"][[0] * len(x)], 1: e_prompt[0], 2: e_prompt[1]}
    return F.linear(blocks(tokens, prompts), sd["head.weight"], sd["head.bias"]), idx


def diverse_batch(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Images whose reference selections are not all equal (keys set to their queries)."""
    x = images(POOL)
    with torch.no_grad():
        state["e_prompt.prompt_key"].copy_(from_reference_state_dict(state).query(x))
    return x


def test_the_loaded_model_computes_the_reference_prediction():
    state = reference_state_dict()
    x = diverse_batch(state)
    expected, ids = reference_forward(state, x)
    assert ids.flatten().tolist() == [0, 1, 2, 3]
    buggy = from_reference_state_dict(state, prefix_layout="pytorch_reshape")
    assert not buggy.training and not any(p.requires_grad for p in buggy.parameters())
    with torch.no_grad():
        assert torch.equal(buggy.prompt_ids(x), ids)
        assert torch.allclose(buggy(x), expected, atol=1e-5)
        correct = from_reference_state_dict(state)
        assert not torch.allclose(correct(x), expected, atol=1e-3)  # the reference scrambles the batch
        for row in range(len(x)):  # ... but not a single image
            alone, _ = reference_forward(state, x[row:row + 1])
            assert torch.allclose(correct(x[row:row + 1]), alone, atol=1e-5)
        correct.train()
        correct.task = 2
        trained, forced = reference_forward(state, x[:1], task=2)
        assert torch.equal(correct.prompt_ids(x[:1]), forced)
        assert torch.allclose(correct(x[:1]), trained, atol=1e-5)


def test_the_architecture_and_the_prompt_sizes_are_read_from_the_state_dict():
    model = from_reference_state_dict(reference_state_dict())
    config = model.config
    assert (config.pool_size, config.e_length, config.g_length) == (POOL, E_LENGTH, G_LENGTH)
    assert (config.g_layers, config.e_layers) == ([0], [1, 2])
    backbone = model.backbone
    assert (backbone.num_layers, backbone.embed_dim, backbone.num_heads, backbone.image_size) == (
        DEPTH, WIDTH, HEADS, (IMAGE, IMAGE))
    assert model.head.out_features == CLASSES


def test_round_trip_through_the_reference_format():
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=IMAGE, patch_size=PATCH, in_chans=1, embed_dim=WIDTH, depth=5, num_heads=HEADS,
                            num_classes=0)
    ours = DualPromptModel(ViTBackbone(vit), CLASSES, DualPromptConfig(pool_size=POOL, e_length=E_LENGTH)).eval()
    state = to_reference_state_dict(ours)
    assert state["e_prompt.prompt"].shape == (3, 2, POOL, E_LENGTH, HEADS, WIDTH // HEADS)
    assert state["g_prompt"].shape == (2, 2, 5, HEADS, WIDTH // HEADS)
    loaded = from_reference_state_dict(state)
    assert (loaded.config.g_layers, loaded.config.e_layers) == ([0, 1], [2, 3, 4])
    for (name, a), (other, b) in zip(ours.state_dict().items(), loaded.state_dict().items()):
        assert name == other and torch.equal(a, b), name
    x = images(3)
    with torch.no_grad():
        assert torch.equal(loaded(x), ours(x))


def test_mismatched_checkpoints_are_refused_with_the_offending_keys():
    state = reference_state_dict()
    with pytest.raises(CheckpointMismatchError, match="missing: blocks.1.norm1.weight"):
        from_reference_state_dict({k: v for k, v in state.items() if k != "blocks.1.norm1.weight"})
    with pytest.raises(CheckpointMismatchError, match="unexpected: extra"):
        from_reference_state_dict({**state, "extra": torch.zeros(1)})
    with pytest.raises(CheckpointMismatchError, match="wrong shape: e_prompt.prompt"):
        from_reference_state_dict(state, e_layers=[1])
    with pytest.raises(CheckpointMismatchError, match="prefix-tuning"):
        from_reference_state_dict({**state, "e_prompt.prompt": torch.zeros(2, POOL, E_LENGTH, WIDTH)})
    with pytest.raises(CheckpointMismatchError, match="e_prompt.prompt_key is missing"):
        from_reference_state_dict({k: v for k, v in state.items() if k != "e_prompt.prompt_key"})
    with pytest.raises(ConfigError, match="eval_scope"):
        from_reference_state_dict(state, eval_scope="seen")


def test_overlapping_g_and_e_layers_are_refused():
    """PyTorch DualPrompt applies only G where both prompts are set; our model would concatenate [G, E]."""
    with pytest.raises(ConfigError, match=r"share blocks \[1\].*disjoint"):
        from_reference_state_dict(reference_state_dict(), g_layers=[0, 1], e_layers=[1, 2, 3])
