"""Loading checkpoints of the official CODA-Prompt code (``ViTZoo`` state dicts) into :class:`CodaPromptModel`.

The reference-format state dicts are generated here with the reference's key names for a tiny ViT (depth 2,
width 32), and the expected logits come from a plain-torch re-implementation of the reference's evaluation
forward that reads the state dict directly (fused ``qkv``, ``α = cos(q ⊙ A, K)`` by ``einsum`` as in
``models/zoo.py``, prefixes concatenated before the keys and values, ``logits[:, :valid_out_dim]``).
Parity with the authors' code itself (ViT-B/16, random weights, float32: max |Δlogit| ≈ 2e-6) was checked
outside the test suite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.compat import from_reference, unwrap_state_dict
from pecft_lib.methods.coda_prompt.reference import from_reference_state_dict, read_layout

WIDTH, HEADS, PATCH, IMAGE, DEPTH = 32, 2, 4, 8, 2
COMPONENTS, LENGTH, LAYERS, TASKS, STARTED, CLASSES = 6, 4, (0, 1), 3, 2, 9


def tiny_vit() -> VisionTransformer:
    return VisionTransformer(img_size=IMAGE, patch_size=PATCH, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS,
                             num_classes=0)


def reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """``ViTZoo``'s keys: ``feat.*`` (fused ``qkv``), ``prompt.e_{p,k,a}_l`` with the rows of the tasks not
    started yet zero, ``last.*``."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    d, tokens = WIDTH, (IMAGE // PATCH) ** 2 + 1
    state = {"feat.cls_token": rand(1, 1, d), "feat.pos_embed": rand(1, tokens, d),
             "feat.patch_embed.proj.weight": rand(d, 3, PATCH, PATCH), "feat.patch_embed.proj.bias": rand(d),
             "feat.norm.weight": 1 + rand(d), "feat.norm.bias": rand(d)}
    for block in range(DEPTH):
        prefix = f"feat.blocks.{block}."
        for norm in ("norm1", "norm2"):
            state[f"{prefix}{norm}.weight"], state[f"{prefix}{norm}.bias"] = 1 + rand(d), rand(d)
        for name, (rows, columns) in {"attn.qkv": (3 * d, d), "attn.proj": (d, d), "mlp.fc1": (4 * d, d),
                                      "mlp.fc2": (d, 4 * d)}.items():
            state[f"{prefix}{name}.weight"] = rand(rows, columns, scale=columns ** -0.5)
            state[f"{prefix}{name}.bias"] = rand(rows)
    in_use = STARTED * COMPONENTS // TASKS
    for layer in LAYERS:
        for kind, shape in (("p", (LENGTH, d)), ("k", (d,)), ("a", (d,))):
            tensor = torch.zeros(COMPONENTS, *shape)
            tensor[:in_use] = rand(in_use, *shape, scale=1.0)
            state[f"prompt.e_{kind}_{layer}"] = tensor
    state["last.weight"], state["last.bias"] = rand(CLASSES, d), rand(CLASSES)
    return state


def reference_logits(state: dict[str, torch.Tensor], x: torch.Tensor, valid: int) -> torch.Tensor:
    """The reference's ``ViTZoo.forward`` in eval mode, then ``[:, :valid_out_dim]``, in plain torch."""
    d, head_dim = WIDTH, WIDTH // HEADS
    f = STARTED * COMPONENTS // TASKS

    def norm(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(t, (d,), state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-6)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], -1, HEADS, head_dim).permute(0, 2, 1, 3)

    def vit(prompt=None) -> torch.Tensor:
        t = F.conv2d(x, state["feat.patch_embed.proj.weight"], state["feat.patch_embed.proj.bias"], stride=PATCH)
        t = torch.cat([state["feat.cls_token"].expand(len(x), -1, -1), t.flatten(2).transpose(1, 2)], 1)
        t = t + state["feat.pos_embed"]
        for block in range(DEPTH):
            p = f"feat.blocks.{block}."
            qkv = F.linear(norm(t, p + "norm1"), state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"])
            q, k, v = qkv.chunk(3, -1)
            q, k, v = heads(q), heads(k), heads(v)
            if prompt is not None and block in LAYERS:
                pk, pv = prompt(block)
                k, v = torch.cat([heads(pk), k], 2), torch.cat([heads(pv), v], 2)
            attention = ((q @ k.transpose(-2, -1)) * head_dim ** -0.5).softmax(-1)
            out = (attention @ v).transpose(1, 2).reshape(len(x), -1, d)
            t = t + F.linear(out, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
            hidden = F.gelu(F.linear(norm(t, p + "norm2"), state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
            t = t + F.linear(hidden, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
        return norm(t, "feat.norm")

    query = vit()[:, 0]

    def prompt(layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        K, A, P = (state[f"prompt.e_{kind}_{layer}"][:f] for kind in "kap")
        weighted = F.normalize(torch.einsum("bd,kd->bkd", query, A), dim=2)
        alpha = torch.einsum("bkd,kd->bk", weighted, F.normalize(K, dim=1))
        p = torch.einsum("bk,kld->bld", alpha, P)
        return p[:, :LENGTH // 2], p[:, LENGTH // 2:]

    return F.linear(vit(prompt)[:, 0], state["last.weight"], state["last.bias"])[:, :valid]


def test_layout_is_read_from_the_state_dict():
    layout = read_layout(reference_state_dict())
    assert (layout.depth, layout.width, layout.n_components, layout.prompt_length) == (DEPTH, WIDTH, COMPONENTS, LENGTH)
    assert (layout.layers, layout.n_classes, layout.rows_in_use) == (list(LAYERS), CLASSES, 4)


def test_loaded_model_computes_the_reference_forward():
    state = reference_state_dict()
    model = from_reference_state_dict(state, n_tasks=TASKS, backbone=tiny_vit())
    valid = STARTED * CLASSES // TASKS
    assert model.task == STARTED - 1 and model.seen_classes == list(range(valid))
    x = torch.rand(3, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    assert torch.allclose(logits[:, :valid], reference_logits(state, x, valid), atol=1e-5)
    assert torch.isinf(logits[:, valid:]).all()  # eval_scope "seen" = the reference's [:, :valid_out_dim]
    everything = from_reference_state_dict(state, n_tasks=TASKS, backbone=tiny_vit(), eval_scope="all")
    with torch.no_grad():
        assert torch.allclose(everything(x)[:, :valid], logits[:, :valid], atol=1e-6)
        assert torch.isfinite(everything(x)).all()


def test_wrapped_data_parallel_checkpoints_load_through_the_registry():
    state = reference_state_dict()
    wrapped = {"model": {f"module.{key}": tensor for key, tensor in state.items()}}
    assert set(unwrap_state_dict(wrapped)) == set(state)
    model = from_reference("coda_prompt", wrapped, source="coda-prompt", n_tasks=TASKS, backbone=tiny_vit())
    reference = from_reference_state_dict(state, n_tasks=TASKS, backbone=tiny_vit())
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name
