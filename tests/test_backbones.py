"""The backbone interface: split-qkv equivalence, prompt and prefix hooks, query features, checkpoints."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertModel

from pecft_lib.backbones import (
    PAPER_VIT_CHECKPOINTS,
    SplitQKVAttention,
    TextEncoderBackbone,
    ViTBackbone,
    create_paper_vit,
    load_backbone,
)
from pecft_lib.backbones import vit_tiny
from pecft_lib.checksums import sha256_of
from pecft_lib.errors import CheckpointMismatchError, CheckpointNotFoundError, ChecksumMismatchError, UnknownNameError


def small_vit(**overrides) -> VisionTransformer:
    torch.manual_seed(0)
    options = dict(img_size=16, patch_size=4, in_chans=3, embed_dim=48, depth=3, num_heads=4, num_classes=0)
    return VisionTransformer(**{**options, **overrides})


def small_bert() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, attn_implementation="eager")
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.mark.parametrize("make", [small_vit, lambda: vit_tiny.create_vit_tiny()], ids=["small", "pecft-vit-tiny"])
def test_split_qkv_vit_equals_timm_in_float64(make):
    original = make().double().eval()
    backbone = ViTBackbone(copy.deepcopy(original)).eval()
    size = original.patch_embed.img_size
    images = torch.randn(3, original.patch_embed.proj.in_channels, *size, dtype=torch.float64)
    expected = original.forward_head(original.forward_features(images), pre_logits=True)
    assert torch.allclose(backbone(images), expected, atol=1e-6, rtol=0)
    assert (backbone(images) - expected).abs().max() < 1e-6


def test_split_qkv_weights_are_bit_identical_slices():
    original = small_vit()
    backbone = ViTBackbone(copy.deepcopy(original))
    width = original.embed_dim
    for layer, block in enumerate(original.blocks):
        attention = backbone.attention(layer)
        for index, linear in enumerate((attention.q, attention.k, attention.v)):
            rows = slice(index * width, (index + 1) * width)
            assert torch.equal(linear.weight, block.attn.qkv.weight[rows])
            assert torch.equal(linear.bias, block.attn.qkv.bias[rows])


def test_text_backbone_equals_bert_on_padded_batch_in_float64():
    bert = small_bert().double()
    backbone = TextEncoderBackbone(copy.deepcopy(bert), pad_token_id=0, pooling="mean").eval()
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    mask = ids != 0
    expected = bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    output = backbone.encode(ids)
    assert torch.equal(output.padding_mask, mask)
    assert (output.tokens[mask] - expected[mask]).abs().max() < 1e-6
    pooled = (expected * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert (backbone(ids) - pooled).abs().max() < 1e-6


def test_padding_does_not_change_text_features():
    backbone = TextEncoderBackbone(small_bert(), pad_token_id=0, pooling="cls").eval()
    short = backbone(torch.tensor([[2, 5, 3]]))
    padded = backbone(torch.tensor([[2, 5, 3, 0, 0, 0]]))
    assert torch.allclose(short, padded, atol=1e-5)


def test_prompts_are_inserted_after_cls():
    backbone = ViTBackbone(small_vit()).eval()
    images = torch.randn(2, 3, 16, 16)
    prompts = torch.randn(2, 5, 48)
    output = backbone.encode(images, prompts=prompts)
    assert output.tokens.shape == (2, 1 + 5 + 16, 48)
    assert output.num_prompts == 5 and output.prompts.shape == (2, 5, 48)
    # A prompt shared by the batch may be given once, [1, P, D].
    assert torch.allclose(backbone.encode(images, prompts=prompts[:1]).tokens[0], output.tokens[0], atol=1e-5)
    assert not torch.allclose(backbone(images, prompts=prompts), backbone(images))


@pytest.mark.parametrize("modality", ["vision", "text"])
def test_leading_outputs_only_equal_the_full_pass(modality):
    """``n_outputs`` prunes the last block to the positions a head reads; those outputs do not change."""
    if modality == "vision":
        backbone, inputs = ViTBackbone(small_vit()).eval(), torch.randn(2, 3, 16, 16)
    else:
        backbone = TextEncoderBackbone(small_bert(), pad_token_id=0, pooling="cls").eval()
        inputs = torch.tensor([[2, 5, 3, 0], [7, 4, 0, 0]])
    prompts, width = torch.randn(2, 3, backbone.embed_dim), backbone.embed_dim
    prefixes = {backbone.num_layers - 1: (torch.randn(2, 2, width), torch.randn(2, 2, width))}
    full = backbone.encode(inputs, prompts, prefixes)
    pruned = backbone.encode(inputs, prompts, prefixes, n_outputs=4)
    assert pruned.tokens.shape == (2, 4, width) and pruned.num_prompts == 3
    assert torch.allclose(pruned.tokens, full.tokens[:, :4], atol=1e-5)
    assert torch.allclose(pruned.prompts, full.prompts, atol=1e-5)
    assert torch.allclose(backbone.query_features(inputs), backbone.pool(backbone.encode(inputs)), atol=1e-5)
    mean_pooled = TextEncoderBackbone(small_bert(), pad_token_id=0, pooling="mean")
    assert backbone.pooled_outputs == 1 and mean_pooled.pooled_outputs is None


def test_text_prompts_are_always_visible():
    backbone = TextEncoderBackbone(small_bert(), pad_token_id=0, pooling="mean").eval()
    output = backbone.encode(torch.tensor([[2, 5, 3, 0]]), prompts=torch.randn(1, 2, 32))
    assert output.padding_mask.tolist() == [[True, True, True, True, True, False]]


def manual_attention(attention: SplitQKVAttention, x, prefix_k, prefix_v):
    heads, dim = attention.num_heads, attention.head_dim

    def split(t):
        return t.view(t.shape[0], t.shape[1], heads, dim).transpose(1, 2)

    q = split(attention.q(x))
    k = split(torch.cat([prefix_k.expand(len(x), -1, -1), attention.k(x)], 1))
    v = split(torch.cat([prefix_v.expand(len(x), -1, -1), attention.v(x)], 1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(len(x), x.shape[1], heads * dim)
    return attention.proj(out)


def test_prefix_is_concatenated_after_the_projections():
    backbone = ViTBackbone(small_vit().double()).eval()
    attention = backbone.attention(1)
    x = torch.randn(2, 17, 48, dtype=torch.float64)
    prefix = (torch.randn(3, 48, dtype=torch.float64), torch.randn(3, 48, dtype=torch.float64))
    out = attention(x, prefix=prefix)
    assert out.shape == x.shape  # queries unchanged: the prefix does not lengthen the output
    assert (out - manual_attention(attention, x, *prefix)).abs().max() < 1e-10


def test_prefix_only_changes_the_chosen_layer():
    backbone = ViTBackbone(small_vit()).eval()
    images = torch.randn(2, 3, 16, 16)
    zero_values = (torch.randn(2, 4, 48), torch.zeros(2, 4, 48))
    with_prefix = backbone(images, prefixes={2: zero_values})
    assert not torch.allclose(with_prefix, backbone(images))
    with pytest.raises(ValueError, match="prefix layers \\[7\\] do not exist"):
        backbone(images, prefixes={7: zero_values})


def test_query_features_are_prompt_free_and_without_gradient():
    backbone = ViTBackbone(small_vit())
    images = torch.randn(2, 3, 16, 16)
    query = backbone.query_features(images)
    assert not query.requires_grad
    assert torch.allclose(query, backbone(images))


def test_qkv_pattern_matches_exactly_the_projections():
    import re

    for backbone in (ViTBackbone(small_vit()), TextEncoderBackbone(small_bert(), 0)):
        names = [name for name, _ in backbone.named_modules() if re.fullmatch(backbone.qkv_pattern, name)]
        assert len(names) == 3 * backbone.num_layers
        assert {name[-1] for name in names} == {"q", "k", "v"}


def test_peft_lora_on_separate_k_and_v():
    from peft import LoraConfig, inject_adapter_in_model

    backbone = ViTBackbone(small_vit()).freeze()
    pattern = backbone.qkv_pattern.replace("(q|k|v)", "(k|v)")
    inject_adapter_in_model(LoraConfig(r=2, target_modules=pattern), backbone)
    trainable = {name for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(".attn.k." in name or ".attn.v." in name for name in trainable)
    assert sum(backbone.get_parameter(name).numel() for name in trainable) == 3 * 2 * (2 * 48 * 2)


def test_bare_vit_name_is_refused_with_the_reason():
    with pytest.raises(UnknownNameError, match="augreg2_in21k_ft_in1k"):
        load_backbone("vit_base_patch16_224")
    with pytest.raises(UnknownNameError, match="unknown ViT checkpoint 'vit_base_patch16_224.foo'"):
        create_paper_vit("vit_base_patch16_224.foo")


def test_paper_checkpoints_without_internet_raise_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError, match="timm/vit_base_patch16_224.augreg_in21k.*checkpoint_path="):
        create_paper_vit("vit_base_patch16_224.augreg_in21k")


@pytest.fixture(scope="module")
def random_vit_b_file(tmp_path_factory):
    model = create_paper_vit("vit_base_patch16_224.orig_in21k", pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


def test_paper_vit_loads_a_local_file_with_checksum(random_vit_b_file):
    model, path = random_vit_b_file
    assert set(PAPER_VIT_CHECKPOINTS) == {
        "vit_base_patch16_224.orig_in21k", "vit_base_patch16_224.augreg_in21k_ft_in1k",
        "vit_base_patch16_224.augreg_in21k",
    }
    loaded = create_paper_vit("vit_base_patch16_224.orig_in21k", checkpoint_path=path, sha256=sha256_of(path))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ChecksumMismatchError, match="expected sha256 0000"):
        create_paper_vit("vit_base_patch16_224.orig_in21k", checkpoint_path=path, sha256="0" * 64)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in vit_tiny.create_vit_tiny().state_dict().items()}, str(path))
    with pytest.raises(CheckpointMismatchError, match="does not hold weights of vit_base_patch16_224.augreg_in21k"):
        create_paper_vit("vit_base_patch16_224.augreg_in21k", checkpoint_path=path)
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        create_paper_vit("vit_base_patch16_224.augreg_in21k", checkpoint_path=tmp_path / "missing.pth")


def test_vit_tiny_committed_weights_match_their_checksum():
    assert sha256_of(vit_tiny.WEIGHTS_FILE) == vit_tiny.SHA256
    assert vit_tiny.WEIGHTS_FILE.stat().st_size <= 20 * 2**20
    backbone = load_backbone("pecft-vit-tiny")
    assert not any(p.requires_grad for p in backbone.parameters())
    assert backbone(torch.zeros(2, 1, 28, 28)).shape == (2, 192)


def test_vit_tiny_corrupted_file_is_refused(tmp_path, monkeypatch):
    corrupted = tmp_path / "model.safetensors"
    corrupted.write_bytes(vit_tiny.WEIGHTS_FILE.read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setattr(vit_tiny, "WEIGHTS_FILE", corrupted)
    with pytest.raises(ChecksumMismatchError, match="force-reinstall pecft_lib.*git checkout -- pecft_lib/data/pecft-vit-tiny"):
        vit_tiny.load_vit_tiny()
    monkeypatch.setattr(vit_tiny, "WEIGHTS_FILE", tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="tools/pretrain_vit_tiny.py"):
        vit_tiny.load_vit_tiny()


def test_gradients_flow_to_prompts_through_a_frozen_backbone():
    backbone = ViTBackbone(small_vit()).freeze()
    prompts = torch.zeros(1, 2, 48, requires_grad=True)
    loss = F.mse_loss(backbone(torch.randn(2, 3, 16, 16), prompts=prompts), torch.zeros(2, 48))
    loss.backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.parameters())


def test_vit_tiny_model_card_quotes_what_the_scripts_measured():
    report = vit_tiny.pretraining_report()
    card = (vit_tiny.WEIGHTS_DIR / "README.md").read_text()
    assert report["sha256"] == vit_tiny.SHA256
    assert report["pretraining_minutes"] <= 60 and report["linear_probe"]["test_accuracy"] >= 0.80
    assert f"**{100 * report['linear_probe']['test_accuracy']:.2f} %** test" in card
    assert f"**{report['pretraining_minutes']:.1f} minutes**" in card
    probes = vit_tiny.probe_report()
    assert probes["pecft-vit-tiny (pretrained)"] == report["linear_probe"]  # re-measured by the probe script
    assert probes["pecft-vit-tiny (pretrained)"]["test_accuracy"] > probes["pecft-vit-tiny (random weights)"]["test_accuracy"]
    for name in ("pecft-vit-tiny (random weights)", "raw pixels"):
        assert f"{100 * probes[name]['test_accuracy']:.2f} %" in card
