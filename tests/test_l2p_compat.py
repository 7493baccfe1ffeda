"""Checkpoints of the PyTorch port of L2P (PT-L2P) loaded into :class:`L2PModel` (JH-LEE-KR/l2p-pytorch,
commit f7bc994).

``data/l2p_pytorch_reference.pt`` was written by PT-L2P's own ``VisionTransformer`` and ``Prompt`` (timm
0.6.7) for a tiny ViT (img 8, patch 4, width 16, depth 2, 2 heads; M=4, L_p=2, N=2, 5 classes): the state
dict as ``engine.py`` saves it, inputs in [0, 1], and the reference's query, cosine matrix, prompt ids,
``reduce_sim`` and logits with and without batch-wise selection. ``tools/parity/l2p_pytorch_fixture.py``
regenerates it from a checkout of the reference (which is never part of this repository); the tests here need
no reference code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.backbones import ViTBackbone
from pecft_lib.compat import unwrap_state_dict
from pecft_lib.errors import CheckpointMismatchError, ConfigError
from pecft_lib.methods.l2p import L2PConfig, L2PModel
from pecft_lib.methods.l2p.reference import from_reference_state_dict, read_layout, to_reference_state_dict

FIXTURE = Path(__file__).parent / "data" / "l2p_pytorch_reference.pt"
ARCH = dict(img_size=8, patch_size=4, in_chans=3, embed_dim=16, depth=2, num_heads=2)


def tiny_vit(**overrides) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(num_classes=0, **{**ARCH, **overrides})


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture()
def state(fixture) -> dict[str, torch.Tensor]:
    return unwrap_state_dict(fixture["checkpoint"])  # engine.py's {"model": …, "epoch": …}


def load(state, **options) -> L2PModel:
    return from_reference_state_dict(state, backbone=options.pop("backbone", tiny_vit()), **options)


@pytest.mark.parametrize("batchwise", [False, True], ids=["per-sample", "batch-wise"])
def test_forward_equals_the_reference(fixture, state, batchwise):
    expected = fixture["expected"]["batchwise" if batchwise else "per_sample"]
    model = load(state, batchwise_selection=batchwise)
    inputs = fixture["inputs"]
    with torch.no_grad():
        query = model.query(inputs)
        similarity = model.similarity(query)
        ids = model.select(similarity)
        logits = model(inputs)
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(query, expected["query"], **close)
    torch.testing.assert_close(similarity, expected["similarity"], **close)
    assert torch.equal(ids, expected["ids"])
    assert torch.equal(model.prompt_ids(inputs), expected["ids"])
    torch.testing.assert_close(similarity.gather(1, ids).sum(1).mean(), expected["reduce_sim"], **close)
    torch.testing.assert_close(model.aux_loss, -0.1 * expected["reduce_sim"], **close)
    torch.testing.assert_close(logits, expected["logits"], **close)


def test_the_prompts_need_the_cls_position_embedding(fixture, state):
    model = load(state)
    model.config.position_embedding = "none"
    with torch.no_grad():
        logits = model(fixture["inputs"])
    assert (logits - fixture["expected"]["per_sample"]["logits"]).abs().max() > 1e-3


def test_layout_and_options_are_read_from_shapes(state):
    layout = read_layout(state)
    assert (layout.pool_size, layout.prompt_length, layout.width, layout.depth, layout.n_classes) == (4, 2, 16, 2, 5)
    assert layout.top_k(num_patches=4) == 2
    model = load(state)
    assert (model.config.pool_size, model.config.prompt_length, model.config.top_k) == (4, 2, 2)
    assert not model.config.batchwise_selection and model.config.position_embedding == "cls_copy"
    assert model.head.out_features == 5 and not model.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in (model.prompts, model.keys, model.head.weight))
    assert model.backbone.vit.pos_embed.shape == (1, 5, 16)


def test_round_trip_reproduces_the_reference_state_dict_exactly(state):
    exported = to_reference_state_dict(load(state))
    assert exported.keys() == state.keys()
    assert all(torch.equal(exported[key], state[key]) for key in state)


def test_round_trip_of_an_own_model_with_other_sizes():
    torch.manual_seed(1)
    config = L2PConfig(pool_size=6, prompt_length=3, top_k=2)
    model = L2PModel(ViTBackbone(tiny_vit(depth=3)), 7, config).eval()
    state = to_reference_state_dict(model)
    assert state["pos_embed"].shape == (1, 1 + 2 * 3 + 4, 16)
    assert state["blocks.2.attn.qkv.weight"].shape == (48, 16)
    loaded = from_reference_state_dict(state, backbone=tiny_vit(depth=3))
    assert (loaded.config.pool_size, loaded.config.prompt_length, loaded.config.top_k) == (6, 3, 2)
    inputs = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), model(inputs), atol=1e-6, rtol=1e-6)


def test_one_error_names_missing_unexpected_and_misshaped_keys(state):
    broken = {key: value for key, value in state.items() if key != "blocks.1.norm2.bias"}
    broken["prompt.extra"] = torch.zeros(1)
    broken["head.bias"] = torch.zeros(9)
    with pytest.raises(CheckpointMismatchError) as error:
        load(broken)
    message = str(error.value)
    assert "missing: blocks.1.norm2.bias" in message
    assert "unexpected: prompt.extra" in message
    assert "wrong shape: head.bias (9,) instead of (5,)" in message


def test_a_backbone_of_another_architecture_is_reported(state):
    with pytest.raises(CheckpointMismatchError, match=r"unexpected: blocks\.1\..*wrong shape"):
        load(state, backbone=tiny_vit(depth=1, embed_dim=16, mlp_ratio=2.0))
    with pytest.raises(CheckpointMismatchError, match="not a positive multiple of the prompt length"):
        load(state, backbone=tiny_vit(img_size=12))


def test_top_k_that_contradicts_the_position_table_is_reported(state):
    assert load(state, top_k=2).config.top_k == 2
    with pytest.raises(CheckpointMismatchError, match="trained with top_k=2"):
        load(state, top_k=1)


def test_prompt_positions_must_hold_copies_of_the_cls_embedding(state):
    state = dict(state)
    table = state["pos_embed"].clone()
    table[0, 2] += 0.5
    state["pos_embed"] = table
    with pytest.raises(CheckpointMismatchError, match=r"rows 1…4 of pos_embed .* not copies .* 0\.5"):
        load(state)


def test_foreign_state_dicts_are_refused(state):
    with pytest.raises(CheckpointMismatchError, match="not a state dict of PyTorch-L2P.*lacks prompt.prompt,"):
        load({key: value for key, value in state.items() if not key.startswith("prompt.")})
    with pytest.raises(CheckpointMismatchError, match="prompt_key=True"):
        load({key: value for key, value in state.items() if key != "prompt.prompt_key"})


def test_models_without_the_cls_copy_have_no_reference_form():
    model = L2PModel(ViTBackbone(tiny_vit()), 5, L2PConfig(pool_size=4, prompt_length=2, top_k=2,
                                                            position_embedding="none"))
    with pytest.raises(ConfigError, match="position_embedding='none'"):
        to_reference_state_dict(model)
