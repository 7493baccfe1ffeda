"""``pecft-vit-glyphs``: the shipped weights, the disjointness of its pretraining classes from every stream, and
the probe table of its model card (written by ``tools/probe_backbones.py``, quoted by the card, gated)."""

from __future__ import annotations

import unicodedata

import pytest
import torch

from pecft_lib.backbones import BACKBONES, load_backbone
from pecft_lib.backbones import vit_glyphs
from pecft_lib.checksums import sha256_of
from pecft_lib.errors import ChecksumMismatchError, CheckpointNotFoundError

STREAMS = ("split_fashion_mnist", "split_mnist", "five_domains")


def test_listed_and_loaded_frozen():
    assert vit_glyphs.NAME in BACKBONES
    backbone = load_backbone(vit_glyphs.NAME)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert backbone(torch.zeros(2, 1, 28, 28)).shape == (2, 192)


def test_committed_weights_match_their_pin_and_report():
    assert sha256_of(vit_glyphs.WEIGHTS_FILE) == vit_glyphs.SHA256 == vit_glyphs.pretraining_report()["sha256"]
    assert vit_glyphs.WEIGHTS_FILE.stat().st_size <= 40 * 2**20


def test_corrupted_or_missing_weights_are_refused(tmp_path, monkeypatch):
    corrupted = tmp_path / "model.safetensors"
    corrupted.write_bytes(vit_glyphs.WEIGHTS_FILE.read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setattr(vit_glyphs, "WEIGHTS_FILE", corrupted)
    with pytest.raises(ChecksumMismatchError, match="git checkout -- pecft_lib/data/pecft-vit-glyphs"):
        vit_glyphs.load_vit_glyphs()
    monkeypatch.setattr(vit_glyphs, "WEIGHTS_FILE", tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="tools/pretrain_vit_glyphs.py"):
        vit_glyphs.load_vit_glyphs()


def test_pretraining_classes_are_letters_of_no_stream():
    lines = (vit_glyphs.WEIGHTS_DIR / "classes.txt").read_text().splitlines()
    assert len(lines) == vit_glyphs.pretraining_report()["classes"]
    for line in lines:
        script, codepoint, char = line.split("\t")
        assert f"U+{ord(char):04X}" == codepoint
        assert unicodedata.category(char) == "Lo", line  # no digit, symbol or Latin letter (Lu/Ll)
        assert not unicodedata.name(char).startswith(("LATIN", "GREEK", "CYRILLIC")), line


def test_probe_tables_have_every_stream():
    for probe in (vit_glyphs.probe_report(), vit_glyphs.probe_report(full=True)):
        for stream in STREAMS:
            assert set(probe[stream]) == {"frozen", "raw_pixels", "random_init"}
            assert all(0.0 <= value <= 1.0 for value in probe[stream].values())
            assert probe[stream]["frozen"] > probe[stream]["random_init"]  # pretraining helps on every stream


def test_model_card_quotes_the_probe_tables_the_gate_and_the_recipe():
    card = (vit_glyphs.WEIGHTS_DIR / "README.md").read_text()
    for probe in (vit_glyphs.probe_report(), vit_glyphs.probe_report(full=True)):
        for stream, row in probe.items():
            assert f"| `{stream}` | {100 * row['frozen']:.1f} | {100 * row['raw_pixels']:.1f} | " \
                   f"{100 * row['random_init']:.1f} |" in card, stream
    # the gate: frozen features beat raw pixels by at least 5 points on at least two registered streams (not the
    # domains inside five_domains); the card says whether it is passed, as the numbers decide
    passing = [s for s, row in vit_glyphs.probe_report().items()
               if "/" not in s and row["frozen"] - row["raw_pixels"] >= 0.05]
    verdict = "**passed**" if len(passing) >= 2 else "**not passed**"
    assert f"raw pixels by at least 5 points on at least two streams): {verdict}" in card
    report = vit_glyphs.pretraining_report()
    assert f"{report['classes']:,} classes" in card
    assert f"{report['training_minutes']:.1f} minutes" in card
