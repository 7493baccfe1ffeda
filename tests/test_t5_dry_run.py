"""Paper-profile dry run of O-LoRA's text benchmark on CPU: T5-large with random weights, LoRA on q and v."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from pecft_lib.backbones.t5 import LORA_TARGETS, T5_ARCHITECTURES, create_t5
from pecft_lib.benchmarks.olora_text import ORDERS, TASKS, build_prompt
from pecft_lib.errors import CheckpointNotFoundError, UnknownNameError


def test_olora_dry_run_on_t5_large_with_lora_on_q_and_v():
    """Two steps of the paper profile's model on synthetic token ids shaped like its batches
    (source ids [B, L] with L ≤ 512 after truncation, target ids [B, ≤ 50]); the tokenizer itself needs the hub."""
    torch.manual_seed(0)
    model = create_t5("t5-large", pretrained=False)
    assert sum(p.numel() for p in model.parameters()) == 737_668_096
    config = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=LORA_TARGETS, task_type="SEQ_2_SEQ_LM")
    model = get_peft_model(model, config)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in trainable.values()) == 2_359_296  # O-LoRA's LoRA size per task (r 8 on q, v)
    prompt = build_prompt(TASKS[ORDERS[1][0]], "Title: a synthetic title\nText: a synthetic text")
    assert prompt.startswith("Task:TC\nDataset:dbpedia") and prompt.endswith("\nAnswer:")
    vocab = T5_ARCHITECTURES["t5-large"]["vocab_size"]
    source = torch.randint(2, vocab, (2, 64))
    target = torch.randint(2, vocab, (2, 4))
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-3)
    before = {name: p.detach().clone() for name, p in trainable.items() if "lora_B" in name}
    for _ in range(2):
        loss = model(input_ids=source, attention_mask=torch.ones_like(source), labels=target).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(before[name], trainable[name]) for name in before)  # B starts at 0 and moves


def test_t5_errors_name_the_fix(monkeypatch, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown T5 model 't5-3b'"):
        create_t5("t5-3b")
    with pytest.raises(CheckpointNotFoundError, match="local_path"):
        create_t5("t5-large", local_path=str(tmp_path / "missing"))
