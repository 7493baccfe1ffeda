"""Dry runs: an experiment with its exact architecture and shapes, but random weights, synthetic data and two
training steps per experience (``pecft run CONFIG --dry-run``).

A dry run checks, without downloads or a GPU, that a preset builds and trains end to end: the backbone is
built with ``pretrained=False`` (the exact timm/Hugging Face architecture), the benchmark is replaced by
random inputs of the real shape (224-px images, 28-px images or token ids) over the real number of classes,
class order and experiences, every training experience is one epoch of :data:`STEPS` mini-batches of
:data:`BATCH_SIZE`, and every evaluation reads :data:`TEST_PER_EXPERIENCE` sample(s) per experience.
O-LoRA's generative experiment gets synthetic prompts, a stand-in tokenizer and T5 with random weights.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
from avalanche.benchmarks.scenarios.generic_scenario import EagerCLStream

from .backbones import load_backbone
from .backbones.t5 import T5_ARCHITECTURES, create_t5
from .benchmarks import BenchmarkConfig, ContinualBenchmark
from .benchmarks.base import TensorClassificationDataset, make_class_incremental, seeded_class_order
from .benchmarks.olora_text import ORDERS, TASKS, GenerativeTask, PromptExample, build_prompt
from .errors import UnknownNameError
from .experiments import Experiment, Prepared, Sources

STEPS = 2
"""Training mini-batches per experience."""
BATCH_SIZE = 2
"""Training (and generation) mini-batch size."""
TEST_PER_EXPERIENCE = 1
"""Test samples per experience read by every evaluation."""
TOKEN_IDS = (1000, 2000)
"""Synthetic token ids are drawn from this range: valid in every BERT-family and T5 vocabulary."""

SYNTHETIC_INPUTS: dict[str, tuple[int, tuple[int, ...] | None]] = {
    # benchmark: (classes, shape of one input; None = token ids of length options.max_length)
    "split_fashion_mnist": (10, (1, 28, 28)),
    "split_cifar100": (100, (3, 224, 224)),
    "split_imagenet_r": (200, (3, 224, 224)),
    "wordnet_supersenses": (20, None),
}


def _shortened(stream: Any, name: str, size: int) -> EagerCLStream:
    """Stream ``name`` of the experiences of ``stream`` cut to their first ``size`` samples; the classes of an
    experience stay those of the full one (set as Avalanche's own class-incremental streams set them)."""
    experiences = []
    for exp in stream:
        short = DatasetExperience(dataset=exp.dataset.subset(range(min(size, len(exp.dataset)))))
        short.classes_in_this_experience = list(exp.classes_in_this_experience)
        experiences.append(short)
    return EagerCLStream(name, experiences)


class SyntheticBenchmark(ContinualBenchmark):
    """A :class:`ContinualBenchmark` whose experiences keep only their first samples: ``train_size`` (one
    epoch = ``train_size / batch size`` steps) and ``test_size`` (what every evaluation reads). The scenario
    keeps every class and experience, so models are built and grow exactly as on the full benchmark;
    ``experiences`` optionally trains only the first ones (:attr:`n_experiences` stays the full count)."""

    def __init__(self, benchmark: ContinualBenchmark, train_size: int, test_size: int,
                 experiences: int | None = None):
        super().__init__(benchmark.name, benchmark.scenario, benchmark.class_order, benchmark.class_names,
                         benchmark.info)
        train = list(benchmark.scenario.train_stream)[:experiences]
        self._train_stream = _shortened(train, benchmark.scenario.train_stream.name, train_size)
        self._test_stream = _shortened(benchmark.scenario.test_stream, benchmark.scenario.test_stream.name,
                                       test_size)

    @property
    def train_stream(self) -> EagerCLStream:
        return self._train_stream

    @property
    def test_stream(self) -> EagerCLStream:
        return self._test_stream


def _inputs(shape: tuple[int, ...] | None, count: int, max_length: int, generator: torch.Generator) -> torch.Tensor:
    if shape is None:
        return torch.randint(*TOKEN_IDS, (count, max_length), generator=generator)
    return torch.rand(count, *shape, generator=generator)


def synthetic_benchmark(cfg: BenchmarkConfig, train_size: int = BATCH_SIZE * STEPS,
                        test_size: int = TEST_PER_EXPERIENCE, experiences: int | None = None) -> SyntheticBenchmark:
    """Random inputs shaped like benchmark ``cfg``'s, with its classes, class order and experiences;
    ``train_size`` training and ``test_size`` test samples per experience; only the first ``experiences``
    are trained (default: all)."""
    if cfg.name not in SYNTHETIC_INPUTS:
        raise UnknownNameError("benchmark with a synthetic stand-in", cfg.name, SYNTHETIC_INPUTS)
    default_classes, shape = SYNTHETIC_INPUTS[cfg.name]
    n_classes = cfg.options.get("n_classes", default_classes)
    max_length = cfg.options.get("max_length", 64)
    order = cfg.options.get("class_order") or seeded_class_order(n_classes, cfg.seed)
    per_class = math.ceil(train_size / max(n_classes // cfg.n_experiences, 1))
    generator = torch.Generator().manual_seed(cfg.seed)
    labels = torch.arange(n_classes)
    train = TensorClassificationDataset(_inputs(shape, n_classes * per_class, max_length, generator),
                                        labels.repeat_interleave(per_class))
    test = TensorClassificationDataset(_inputs(shape, n_classes, max_length, generator), labels)
    benchmark = make_class_incremental(
        cfg.name, train, test, n_experiences=cfg.n_experiences, class_order=order,
        class_names=[f"class{c}" for c in range(n_classes)],
        info={"synthetic": True, "seed": cfg.seed, "train_per_experience": train_size,
              "test_per_experience": test_size},
    )
    return SyntheticBenchmark(benchmark, train_size, test_size, experiences)


def replace_fields(value: Any, settings: dict[str, Any]) -> Any:
    """``value`` with every dataclass field named in ``settings`` replaced, at any depth."""
    if dataclasses.is_dataclass(value):
        updates = {field.name: settings[field.name] if field.name in settings else
                   replace_fields(getattr(value, field.name), settings) for field in dataclasses.fields(value)}
        return dataclasses.replace(value, **updates)
    if isinstance(value, dict):
        return {key: replace_fields(item, settings) for key, item in value.items()}
    return value


DRY_SETTINGS = {"batch_size": BATCH_SIZE, "eval_batch_size": TEST_PER_EXPERIENCE, "epochs": 1}
"""The config keys a dry run changes, wherever they occur (optimisation, baselines, classic training)."""


def dry_experiment(experiment: Experiment, device: str | None = "cpu") -> Experiment:
    """``experiment`` with :data:`DRY_SETTINGS` — one epoch of :data:`STEPS` batches of :data:`BATCH_SIZE` per
    experience — on ``device`` (``None``: the config's); nothing else of its config changes."""
    settings = DRY_SETTINGS if device is None else {**DRY_SETTINGS, "device": device}
    return experiment.replace_config(replace_fields(experiment.config, settings))


def dry_sources(experiment: Experiment, experiences: int | None = None) -> Sources:
    """Random weights of the experiment's backbone and its synthetic benchmark (training only the first
    ``experiences``; default: all)."""
    config = experiment.config
    backbone = getattr(config, "backbone", None)
    return Sources(
        backbone=(lambda: load_backbone(backbone, pretrained=False)) if backbone is not None else None,
        benchmark=synthetic_benchmark(config.benchmark, experiences=experiences),
    )


def prepare_dry(experiment: Experiment, experiences: int | None = None) -> Prepared:
    """:meth:`Experiment.prepare` on random weights and synthetic data (``experiment`` from
    :func:`dry_experiment`), training the first ``experiences`` (default: all)."""
    strategy, benchmark, config = experiment.prepare(dry_sources(experiment, experiences))
    return strategy, benchmark, {**config, "dry_run": True, "dry_run_experiences": experiences}


# ----------------------------------------------------------------------------------------- O-LoRA generative


class SyntheticTokenizer:
    """A stand-in for T5's tokenizer (which needs the hub): one id per whitespace-separated word, from
    :data:`TOKEN_IDS`, then ``</s>`` (id 1); padding with id 0, as T5's."""

    pad_token_id, eos_token_id = 0, 1

    def _ids(self, text: str, max_length: int) -> list[int]:
        span = TOKEN_IDS[1] - TOKEN_IDS[0]
        words = [TOKEN_IDS[0] + sum(map(ord, word)) % span for word in text.split()]
        return words[:max_length - 1] + [self.eos_token_id]

    def __call__(self, texts: list[str], *, max_length: int, truncation: bool, padding: str,
                 return_tensors: str) -> dict[str, torch.Tensor]:
        rows = [self._ids(text, max_length) for text in texts]
        width = max(map(len, rows))
        ids = torch.tensor([row + [self.pad_token_id] * (width - len(row)) for row in rows])
        return {"input_ids": ids, "attention_mask": (ids != self.pad_token_id).long()}

    def batch_decode(self, ids: torch.Tensor, *, skip_special_tokens: bool) -> list[str]:
        return [" ".join(f"w{i}" for i in row.tolist() if i > self.eos_token_id) for row in ids]


def synthetic_generative_tasks(order: int, train: int = BATCH_SIZE * STEPS,
                               test: int = TEST_PER_EXPERIENCE) -> list[GenerativeTask]:
    """O-LoRA's tasks of ``order`` (names, label strings, prompt format) with ``train`` and ``test`` synthetic
    examples each."""
    tasks = []
    for name in ORDERS[order]:
        task = TASKS[name]

        def examples(count: int, split: str) -> list[PromptExample]:
            return [PromptExample(build_prompt(task, f"Title: synthetic {split} {k}\nText: a synthetic text"),
                                  task.labels[k % len(task.labels)], k % len(task.labels)) for k in range(count)]

        tasks.append(GenerativeTask(name, task.labels, examples(train, "train"), examples(test, "test")))
    return tasks


def generative_dry_arguments(model: str, order: int, experiences: int | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`~pecft_lib.methods.olora.run_olora_generative` for a dry run: synthetic tasks
    (the first ``experiences``; default: all), :class:`SyntheticTokenizer` and T5 ``model`` with random weights."""
    if model not in T5_ARCHITECTURES:
        raise UnknownNameError("T5 model", model, T5_ARCHITECTURES)
    return {"tasks": synthetic_generative_tasks(order)[:experiences], "tokenizer": SyntheticTokenizer(),
            "model_factory": lambda: create_t5(model, pretrained=False)}


__all__ = [
    "BATCH_SIZE", "DRY_SETTINGS", "STEPS", "SyntheticBenchmark", "SyntheticTokenizer", "TEST_PER_EXPERIENCE",
    "dry_experiment", "generative_dry_arguments", "prepare_dry", "replace_fields", "synthetic_benchmark",
    "synthetic_generative_tasks",
]
