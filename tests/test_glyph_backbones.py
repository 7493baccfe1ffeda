"""The two backbones pretrained on glyphs, ``pecft-vit-glyphs`` and ``pecft-hybrid-glyphs``: the shipped weights,
the disjointness of their pretraining classes from every stream, and the probe tables of their model cards
(written by ``tools/probe_backbones.py``, quoted by the cards, gated); and the hybrid's frozen ImageNet stem."""

from __future__ import annotations

import unicodedata

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2

from pecft_lib.backbones import BACKBONES, hybrid_glyphs, load_backbone, vit_glyphs
from pecft_lib.checksums import sha256_of
from pecft_lib.errors import ChecksumMismatchError, CheckpointNotFoundError

STREAMS = ("split_fashion_mnist", "split_mnist", "five_domains")
SHIPPED = {
    vit_glyphs: (vit_glyphs.load_vit_glyphs, "tools/pretrain_vit_glyphs.py"),
    hybrid_glyphs: (hybrid_glyphs.load_hybrid_glyphs, "tools/pretrain_hybrid_glyphs.py"),
}
each_backbone = pytest.mark.parametrize("module", list(SHIPPED), ids=lambda m: m.NAME)


def probes(module) -> list[dict]:
    """The probe tables a backbone ships: at the medium budget, and for ``pecft-vit-glyphs`` also on whole splits."""
    return [module.probe_report()] + ([module.probe_report(full=True)] if module is vit_glyphs else [])


@each_backbone
def test_listed_and_loaded_frozen(module):
    assert module.NAME in BACKBONES
    backbone = load_backbone(module.NAME)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert backbone(torch.zeros(2, 1, 28, 28)).shape == (2, 192)


@each_backbone
def test_committed_weights_match_their_pin_and_report(module):
    assert sha256_of(module.WEIGHTS_FILE) == module.SHA256 == module.pretraining_report()["sha256"]
    assert module.WEIGHTS_FILE.stat().st_size <= 40 * 2**20


@each_backbone
def test_corrupted_or_missing_weights_are_refused(module, tmp_path, monkeypatch):
    load, script = SHIPPED[module]
    corrupted = tmp_path / "model.safetensors"
    corrupted.write_bytes(module.WEIGHTS_FILE.read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setattr(module, "WEIGHTS_FILE", corrupted)
    with pytest.raises(ChecksumMismatchError, match=f"git checkout -- pecft_lib/data/{module.NAME}"):
        load()
    monkeypatch.setattr(module, "WEIGHTS_FILE", tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointNotFoundError, match=script):
        load()


@each_backbone
def test_pretraining_classes_are_letters_of_no_stream(module):
    lines = (module.WEIGHTS_DIR / "classes.txt").read_text().splitlines()
    assert len(lines) == module.pretraining_report()["classes"]
    for line in lines:
        script, codepoint, char = line.split("\t")
        assert f"U+{ord(char):04X}" == codepoint
        assert unicodedata.category(char) == "Lo", line  # no digit, symbol or Latin letter (Lu/Ll)
        assert not unicodedata.name(char).startswith(("LATIN", "GREEK", "CYRILLIC")), line


@each_backbone
def test_probe_tables_have_every_stream(module):
    for probe in probes(module):
        for stream in STREAMS:
            assert set(probe[stream]) == {"frozen", "raw_pixels", "random_init"}
            assert all(0.0 <= value <= 1.0 for value in probe[stream].values())
            assert probe[stream]["frozen"] > probe[stream]["random_init"]  # pretraining helps on every stream


def gate_passed(probe: dict) -> bool:
    """Frozen features beat raw pixels by at least 5 points on at least two registered streams (not the domains
    inside ``five_domains``)."""
    return sum(1 for s, row in probe.items() if "/" not in s and row["frozen"] - row["raw_pixels"] >= 0.05) >= 2


@each_backbone
def test_model_card_quotes_the_probe_tables_the_gate_and_the_recipe(module):
    card = (module.WEIGHTS_DIR / "README.md").read_text()
    for probe in probes(module):
        for stream, row in probe.items():
            assert f"| `{stream}` | {100 * row['frozen']:.1f} | {100 * row['raw_pixels']:.1f} | " \
                   f"{100 * row['random_init']:.1f} |" in card, stream
    verdict = "**passed**" if gate_passed(module.probe_report()) else "**not passed**"  # as the numbers decide
    assert f"raw pixels by at least 5 points on at least two streams): {verdict}" in card
    report = module.pretraining_report()
    assert f"{report['classes']:,} classes" in card
    assert f"{report['training_minutes']:.1f} minutes" in card


def test_the_hybrid_passes_the_gate():
    assert gate_passed(hybrid_glyphs.probe_report())


def test_folding_batch_norms_keeps_the_function():
    torch.manual_seed(0)
    network = mobilenet_v2().features[:hybrid_glyphs.STEM_BLOCKS]
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial statistics, as a trained network has
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    network.eval()
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected = network(images)
        folded = hybrid_glyphs.fold_batch_norms(network)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(images), expected, rtol=1e-4, atol=1e-4)


def test_the_stem_is_never_trained():
    model = hybrid_glyphs.create_hybrid_glyphs(num_classes=3)
    model.requires_grad_(True)  # what "full" fine-tuning does
    names = [name for name, _ in model.named_parameters()]
    assert not any(".stem." in name for name in names)
    assert "patch_embed.proj.weight" in names  # the token projection belongs to the transformer
    assert any(name.startswith("patch_embed.stem.") for name in model.state_dict())  # saved with the weights
    stem = load_backbone(hybrid_glyphs.NAME, freeze=False).vit.patch_embed.stem
    before = {k: v.clone() for k, v in stem.state_dict().items()}
    backbone = load_backbone(hybrid_glyphs.NAME, freeze=False)
    optimizer = torch.optim.SGD(backbone.parameters(), lr=1.0)
    backbone(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    for key, value in backbone.vit.patch_embed.stem.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_the_hybrid_takes_grey_28_pixel_images_only():
    embed = hybrid_glyphs.create_hybrid_glyphs().patch_embed
    with pytest.raises(ValueError, match="takes 28×28 images"):
        embed(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="grey images"):
        hybrid_glyphs.MobileNetStemEmbed(in_chans=3)
