"""O-LoRA's paper recipe: a T5 model learns to generate the label string of each task in turn (cmnfriend/O-LoRA).

Per task: a fresh adapter (:func:`~.adapters.add_task_adapter` on ``q`` and ``v`` of every T5 attention), a fresh
AdamW at a constant learning rate, ``epochs`` passes over the shuffled training examples with the token-level
cross-entropy of the target string (T5 labels, padding replaced by -100) plus O-LoRA's penalties. After each task,
greedy decoding on the test examples of every task seen so far, scored by exact match after normalisation
(:func:`normalize_answer`, after the reference's ``src/compute_metrics.py``): ``a_{t,i}`` fills the accuracy
matrix (``R[i, t]`` in this library's convention; entries of unseen tasks stay empty), and the paper's AA, the
mean of the final per-dataset scores, is the record's ``A_last``.

The real model and tokenizer come from the hub (``google-t5/t5-large``) or a ``save_pretrained`` folder; a run at
paper scale needs a GPU (fp32, global batch 64 — on one GPU instead of the reference's 8, see cmnfriend/O-LoRA#32).
"""

from __future__ import annotations

import string
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ...backbones.t5 import HUB_IDS, LORA_TARGETS, T5_ARCHITECTURES, create_t5
from ...benchmarks.olora_text import GenerativeTask, PromptExample, olora_generative_tasks
from ...errors import CheckpointNotFoundError, UnknownNameError
from ...evaluation import PeakMemory, RunRecord, count_trainable_parameters
from ...repro import check_device, seed_everything
from ..common.precision import autocast, check_device_precision
from ..spec import RunResult
from .adapters import ModuleFactors, add_task_adapter, lora_layers, target_modules, task_factors
from .config import OLoRAConfig, OLoRAGenerativeConfig
from .loss import PenaltyRecord, olora_penalties

_PUNCTUATION = str.maketrans("", "", string.punctuation)


class Seq2SeqTokenizer(Protocol):
    """What this module needs from a Hugging Face tokenizer (T5's appends ``</s>`` to every text)."""

    def __call__(self, texts: list[str], *, max_length: int, truncation: bool, padding: str,
                 return_tensors: str) -> Any: ...

    def batch_decode(self, ids: torch.Tensor, *, skip_special_tokens: bool) -> list[str]: ...


def normalize_answer(text: str) -> str:
    """O-LoRA's answer normalisation: lower-case, remove ASCII punctuation, collapse whitespace (no article
    removal)."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference after :func:`normalize_answer`."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need as many predictions as references (> 0), got {len(predictions)} and {len(references)}")
    return sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references)) / len(references)


def load_t5_tokenizer(name: str = "t5-large", local_path: str | None = None) -> Seq2SeqTokenizer:
    """The tokenizer of T5 model ``name`` from the hub, or from ``local_path`` (a ``save_pretrained`` folder)."""
    from transformers import AutoTokenizer

    if name not in T5_ARCHITECTURES:
        raise UnknownNameError("T5 model", name, T5_ARCHITECTURES)
    source = local_path or HUB_IDS[name]
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_path is not None)
    except (OSError, ValueError) as err:
        raise CheckpointNotFoundError(
            f"could not load the tokenizer of {name} from {source} ({err}). Fix: run with internet access (hub id "
            f"{HUB_IDS[name]}), or save the tokenizer once with save_pretrained() and pass local_path=."
        ) from err


class OLoRASeq2Seq(nn.Module):
    """A frozen sequence-to-sequence model with one O-LoRA adapter per task, all summed in every forward pass.

    ``targets`` is the ``peft`` regex of the attention projections (default: ``q``/``v`` of every T5 self- and
    cross-attention, 144 layers in T5-large), restricted to ``lora.targets``.
    """

    def __init__(self, model: PreTrainedModel, lora: OLoRAConfig, targets: str = LORA_TARGETS):
        super().__init__()
        self.model = model.requires_grad_(False)  # the reference trains the adapters only (src/run_uie_lora.py)
        self.lora = lora
        self.targets = target_modules(targets, lora.targets)

    @property
    def n_tasks(self) -> int:
        """Tasks begun so far."""
        layers = lora_layers(self.model)
        return len(layers[0][1].lora_A) if layers else 0

    def begin_task(self) -> None:
        """Add the next task's adapter; earlier ones stay active and frozen."""
        add_task_adapter(self.model, self.lora, self.targets, self.n_tasks)

    def factors(self) -> list[ModuleFactors]:
        """Per LoRA'd layer, the old down matrices and the current task's down and up matrices."""
        if self.n_tasks == 0:
            raise RuntimeError("no task has begun: call begin_task first")
        return task_factors(self.model, self.n_tasks - 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean token cross-entropy of ``labels`` (-100 = ignored)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding (one beam, no sampling, no repetition penalty), as O-LoRA evaluates."""
        return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                   num_beams=1, do_sample=False, repetition_penalty=1.0)


def encode_examples(tokenizer: Seq2SeqTokenizer, examples: Sequence[PromptExample], max_source_length: int,
                    max_target_length: int) -> dict[str, torch.Tensor]:
    """Token ids of the sources (truncated, padded to the longest) and T5 labels of the targets (truncated,
    padding replaced by -100 so that the loss ignores it)."""
    sources = tokenizer([e.source for e in examples], max_length=max_source_length, truncation=True,
                        padding="longest", return_tensors="pt")
    targets = tokenizer([e.target for e in examples], max_length=max_target_length, truncation=True,
                        padding="longest", return_tensors="pt")
    labels = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, -100)
    return {"input_ids": sources["input_ids"], "attention_mask": sources["attention_mask"], "labels": labels}


def train_task(model: OLoRASeq2Seq, examples: Sequence[PromptExample], tokenizer: Seq2SeqTokenizer,
               cfg: OLoRAGenerativeConfig, generator: torch.Generator,
               penalty_log: list[PenaltyRecord] | None = None) -> None:
    """Train the newest adapter on ``examples``: fresh AdamW, constant learning rate, ``cfg.optim.epochs`` shuffled
    passes, loss ``CE + λ1 · orth + λ2 · l2`` (``src/uie_trainer_lora.py`` of cmnfriend/O-LoRA); with
    ``optim.precision=bf16`` the model's forward runs under bfloat16 autocast, the penalties and the update in float32."""
    optim, lora = cfg.optim, cfg.method
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim.lr, weight_decay=optim.weight_decay)
    experience = model.n_tasks - 1
    model.train()
    step = 0
    for epoch in range(optim.epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        starts = range(0, len(order), optim.batch_size)
        for start in tqdm(starts, desc=f"task {experience}, epoch {epoch}", unit="batch", leave=False):
            batch = encode_examples(tokenizer, [examples[k] for k in order[start:start + optim.batch_size]],
                                    cfg.max_source_length, cfg.max_target_length)
            with autocast(optim.precision, device.type):
                task_loss = model(**{key: value.to(device) for key, value in batch.items()}).float()
            orth, l2 = olora_penalties(model.factors(), lora.orthogonality)
            loss = task_loss + lora.lambda_orth * orth + lora.lambda_l2 * l2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if penalty_log is not None:
                penalty_log.append(PenaltyRecord(experience, epoch, step, task_loss.item(), orth.item(), l2.item(),
                                                 loss.item()))
            step += 1


def predict(model: OLoRASeq2Seq, sources: Sequence[str], tokenizer: Seq2SeqTokenizer,
            cfg: OLoRAGenerativeConfig) -> list[str]:
    """Greedy-decoded answers to ``sources`` with every adapter active (under bfloat16 autocast with
    ``optim.precision=bf16``)."""
    device = next(model.parameters()).device
    model.eval()
    answers: list[str] = []
    starts = range(0, len(sources), cfg.optim.eval_batch_size)
    for start in tqdm(starts, desc="generating", unit="batch", leave=False):
        batch = tokenizer(list(sources[start:start + cfg.optim.eval_batch_size]), max_length=cfg.max_source_length,
                          truncation=True, padding="longest", return_tensors="pt")
        with autocast(cfg.optim.precision, device.type):
            ids = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device), cfg.max_new_tokens)
        answers += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return answers


def evaluate_task(model: OLoRASeq2Seq, task: GenerativeTask, tokenizer: Seq2SeqTokenizer,
                  cfg: OLoRAGenerativeConfig) -> float:
    """Exact match of the greedy answers on ``task``'s test examples."""
    predictions = predict(model, [e.source for e in task.test], tokenizer, cfg)
    return exact_match(predictions, [e.target for e in task.test])


def describe_tasks(tasks: Sequence[GenerativeTask], cfg: OLoRAGenerativeConfig) -> dict[str, Any]:
    """The JSON-able summary of the generative benchmark stored in the record."""
    return {
        "name": "olora_generative",
        "n_experiences": len(tasks),
        "task_order": [task.name for task in tasks],
        "labels": {task.name: list(task.labels) for task in tasks},
        "train_sizes": [len(task.train) for task in tasks],
        "test_sizes": [len(task.test) for task in tasks],
        "order": cfg.order,
        "data_seed": cfg.data_seed,
        "metric": "exact match after lower-casing, punctuation removal, whitespace collapse",
    }


def run_olora_generative(
    cfg: OLoRAGenerativeConfig,
    tasks: Sequence[GenerativeTask] | None = None,
    tokenizer: Seq2SeqTokenizer | None = None,
    model_factory: Callable[[], PreTrainedModel] | None = None,
    name: str = "O-LoRA",
    penalty_log: list[PenaltyRecord] | None = None,
    save_to: str | Path | None = None,
) -> RunResult:
    """Train O-LoRA task by task and return the record of per-dataset exact matches and the trained
    :class:`OLoRASeq2Seq` (this loop has no Avalanche strategy).

    Args:
        tasks: default :func:`~pecft_lib.benchmarks.olora_text.olora_generative_tasks` with ``cfg``'s data settings.
        tokenizer: default :func:`load_t5_tokenizer` of ``cfg.model`` / ``cfg.local_path``.
        model_factory: default the pretrained ``cfg.model`` (:func:`~pecft_lib.backbones.t5.create_t5`), seeded
            with ``cfg.seed`` like everything else in the run.
        penalty_log: a list that receives the loss terms of every step.
        save_to: write the record there after every task (``status="running"`` until the last).
    """
    device = check_device(cfg.optim.device, "optim.device")
    check_device_precision(cfg.optim.precision, torch.device(device), "optim.precision")
    if tasks is None:
        tasks = olora_generative_tasks(cfg.order, cfg.data_seed, cfg.train_per_class, cfg.test_per_class,
                                       cfg.test_per_task)
    if not tasks or any(not task.train or not task.test for task in tasks):
        raise ValueError("every task needs training and test examples")
    tokenizer = tokenizer if tokenizer is not None else load_t5_tokenizer(cfg.model, cfg.local_path)
    seed_everything(cfg.seed)
    base = model_factory() if model_factory is not None else create_t5(cfg.model, True, cfg.local_path)
    model = OLoRASeq2Seq(base, cfg.method).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    matrix = np.full((len(tasks), len(tasks)), np.nan)
    timings: dict[str, list] = {"train_seconds": [], "eval_seconds": [], "peak_memory_mib": [],
                                "trainable_parameters": []}
    for stage, task in enumerate(tasks):
        model.begin_task()
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            train_task(model, task.train, tokenizer, cfg, generator, penalty_log)
            timings["train_seconds"].append(time.perf_counter() - start)
        timings["peak_memory_mib"].append(memory.mib)
        timings["trainable_parameters"].append(count_trainable_parameters(model))
        start = time.perf_counter()
        for seen in range(stage + 1):  # the reference evaluates the tasks seen so far only
            matrix[seen, stage] = evaluate_task(model, tasks[seen], tokenizer, cfg)
        timings["eval_seconds"].append(time.perf_counter() - start)
        record = RunRecord.from_arrays(
            name, matrix, None, config=asdict(cfg), benchmark=describe_tasks(tasks, cfg),
            peak_memory_kind=memory.kind, status="finished" if stage == len(tasks) - 1 else "running",
            **{key: list(values) for key, values in timings.items()},
        )
        if save_to is not None:
            record.save(save_to)
    return RunResult(record, model)
