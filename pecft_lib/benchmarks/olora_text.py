"""O-LoRA's standard continual-learning text benchmark (paper profile): DBpedia-14, Amazon reviews, Yahoo Answers
and AG News learned one after the other, in three task orders.

Reference: Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning" (EMNLP Findings),
code ``cmnfriend/O-LoRA`` (``CL_Benchmark/``, ``configs/instruction_config.json``, ``src/uie_dataset_lora.py``,
``src/uie_collator.py``; commit 07117e1). The benchmark itself comes from LFPT5/ProgPrompt,
after the datasets of Zhang et al. 2015.

Two views of the same sampled data:

* **generative** (:func:`olora_generative_tasks`, the paper's T5 recipe): per task, in the task order, a list of
  (source, target) strings in O-LoRA's instruction format (:func:`build_prompt`); the target is the label string.
* **class-incremental** (:func:`olora_text`, registered as ``"olora_text"``): one Avalanche experience per task over
  the union of the 4 + 5 + 14 + 10 = 33 labels, for encoder classifiers. Inputs are the token ids of the example
  text alone (the ``sentence`` below, without the instruction, whose option list and dataset name would give the
  task away), truncated/padded to ``max_length``; ``info`` records the tokenizer, ``max_length`` and pad id.

Data: Hugging Face hub datasets read with ``datasets.load_dataset(id, split=..., cache_dir=<cache>/hf_datasets)``
(``<cache>`` is :func:`pecft_lib.paths.cache_dir`); see :data:`TASKS` for ids, fields and label strings:

* ``dbpedia``: ``fancyzhx/dbpedia_14`` (label 0–13, title, content), 14 ontology classes;
* ``amazon``: ``yassiracharki/Amazon_Reviews_for_Sentiment_Analysis_fine_grained_5_classes`` (class_index 1–5,
  review_title, review_text), a copy of Zhang et al.'s Amazon Review Full; labels "very negative" … "very positive";
* ``yahoo``: ``community-datasets/yahoo_answers_topics`` (topic 0–9, question_title, question_content,
  best_answer), 10 topics;
* ``agnews``: ``sh0416/ag_news`` (label 1–4, title, description), Zhang et al.'s CSV with the title kept apart
  (``fancyzhx/ag_news`` merges it into the text); labels World, Sports, Business, Science or Technology.

Example text: O-LoRA's ``sentence`` field, rebuilt as in its released ``CL_Benchmark`` files (the Yahoo variant
without content is inferred from them); fields are used as the hub datasets store them::

    DBpedia, Amazon, AG News   "Title: {title}\\nText: {body}\\n"
    Yahoo                      "Title: {question_title}\\nQuestion: {question_content}\\nAnswer: {best_answer}\\n"
    Yahoo, empty content       "Question: {question_title}\\nAnswer: {best_answer}\\n"

Sampling (seeded, numpy PCG64). Training: ``train_per_class`` examples of every class (O-LoRA: about 1,000 per
class — its files hold random draws of 1,000 × classes examples, so its class counts vary, e.g. 968–1,040 for
AG News — giving 14,000 / 5,000 / 10,000 / 4,000 examples). Test: O-LoRA evaluates on 7,600 examples per task
(AG News's whole test split; uniform random draws for the others, so class counts vary); ``test_per_task=7600``
does the same with our seed, ``test_per_class`` draws a balanced test set instead, and both ``None`` keep the
whole test split. O-LoRA has no validation split (its dev and test files are identical).

Caveat (kept for parity): O-LoRA's prompt names the dataset (``Dataset:agnews``), a hint of the task identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark

from ..errors import ConfigError, DatasetNotFoundError
from ..paths import cache_dir
from .base import ContinualBenchmark, TensorClassificationDataset, per_class_subset
from .text import TextBenchmark, resolve_tokenizer, text_info, tokenize_texts, with_texts

# O-LoRA's instruction per task type (configs/instruction_config.json): TC topic, SC sentiment classification.
INSTRUCTIONS = {
    "TC": "What is the topic of the following paragraph? Choose one from the option.\n",
    "SC": "What is the sentiment of the following paragraph? Choose one from the option.\n",
}


def _title_text(title: str, body: str) -> Callable[[Mapping[str, Any]], str]:
    def sentence(row: Mapping[str, Any]) -> str:
        return f"Title: {row[title]}\nText: {row[body]}\n"

    return sentence


def _yahoo_sentence(row: Mapping[str, Any]) -> str:
    if row["question_content"]:
        return f"Title: {row['question_title']}\nQuestion: {row['question_content']}\nAnswer: {row['best_answer']}\n"
    return f"Question: {row['question_title']}\nAnswer: {row['best_answer']}\n"


@dataclass(frozen=True)
class TextTask:
    """One dataset of the benchmark: where it is on the hub and how O-LoRA presents it."""

    name: str  # O-LoRA's dataset name, written into the prompt
    task_type: str  # key of INSTRUCTIONS
    hub_id: str
    label_field: str
    first_label: int  # value of the first class in the hub dataset (0- or 1-based labels)
    labels: tuple[str, ...]  # O-LoRA's label strings (CL_Benchmark/*/labels.json), in the hub's label order
    text_fields: tuple[str, ...]  # the fields `sentence` reads
    sentence: Callable[[Mapping[str, Any]], str] = field(repr=False)  # a hub row → O-LoRA's "sentence" text
    olora_train_size: int  # size of O-LoRA's training file (CL_Benchmark/*/train.json)


TASKS: dict[str, TextTask] = {
    task.name: task
    for task in (
        TextTask(
            "dbpedia", "TC", "fancyzhx/dbpedia_14", "label", 0,
            ("Company", "Educational Institution", "Artist", "Athlete", "Office Holder", "Mean of Transportation",
             "Building", "Natural Place", "Village", "Animal", "Plant", "Album", "Film", "Written Work"),
            ("title", "content"), _title_text("title", "content"), 14000,
        ),
        TextTask(
            "amazon", "SC", "yassiracharki/Amazon_Reviews_for_Sentiment_Analysis_fine_grained_5_classes",
            "class_index", 1, ("very negative", "negative", "neutral", "positive", "very positive"),
            ("review_title", "review_text"), _title_text("review_title", "review_text"), 5000,
        ),
        TextTask(
            "yahoo", "TC", "community-datasets/yahoo_answers_topics", "topic", 0,
            ("Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
             "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
             "Family & Relationships", "Politics & Government"),
            ("question_title", "question_content", "best_answer"), _yahoo_sentence, 10000,
        ),
        TextTask(
            "agnews", "TC", "sh0416/ag_news", "label", 1, ("World", "Sports", "Business", "Science or Technology"),
            ("title", "description"), _title_text("title", "description"), 4000,
        ),
    )
}
"""The four tasks; their order here fixes the global class ids of :func:`olora_text` (dbpedia 0–13, amazon 14–18,
yahoo 19–28, agnews 29–32)."""

ORDERS: dict[int, tuple[str, ...]] = {
    1: ("dbpedia", "amazon", "yahoo", "agnews"),
    2: ("dbpedia", "amazon", "agnews", "yahoo"),
    3: ("yahoo", "amazon", "agnews", "dbpedia"),
}
"""O-LoRA's task orders of the standard benchmark (``scripts/order_{1,2,3}.sh``)."""

OLORA_TEST_SIZE = 7600


def build_prompt(task: TextTask, sentence: str) -> str:
    """O-LoRA's source string (task and dataset names on, single instruction)::

        Task:<TC|SC>\\nDataset:<name>\\n<instruction>\\nOption: <labels, comma-separated> \\n<sentence>\\nAnswer:
    """
    options = ", ".join(task.labels)
    instruction = INSTRUCTIONS[task.task_type]
    return f"Task:{task.task_type}\nDataset:{task.name}\n{instruction}Option: {options} \n{sentence}\nAnswer:"


@dataclass(frozen=True)
class PromptExample:
    """One generative example: ``source`` (the prompt), ``target`` (the label string), ``label`` (its index)."""

    source: str
    target: str
    label: int


@dataclass
class GenerativeTask:
    """One task of the generative view, with its label strings and sampled examples."""

    name: str
    labels: tuple[str, ...]
    train: list[PromptExample]
    test: list[PromptExample]


@dataclass
class SampledTask:
    """The sampled texts (O-LoRA's ``sentence``) and labels (0-based, per task) of one task."""

    task: TextTask
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray


def _check_order(order: int) -> tuple[str, ...]:
    if order not in ORDERS:
        raise ConfigError(f"order must be one of {', '.join(map(str, ORDERS))} (O-LoRA's task orders), got {order!r}")
    return ORDERS[order]


def _check_test_sizes(test_per_class: int | None, test_per_task: int | None) -> None:
    if test_per_class is not None and test_per_task is not None:
        raise ConfigError(
            f"give either test_per_class (balanced test sets, got {test_per_class}) or test_per_task (uniform draws, "
            f"O-LoRA's {OLORA_TEST_SIZE}; got {test_per_task}), not both: set the other to None"
        )


def _source(task: TextTask, data_dirs: Mapping[str, str | Path] | None) -> str:
    return str(data_dirs[task.name]) if data_dirs and task.name in data_dirs else task.hub_id


def load_task_split(task: TextTask, split: str, data_dirs: Mapping[str, str | Path] | None = None):
    """One split of ``task`` as a ``datasets.Dataset``, from the hub (cached in ``<cache>/hf_datasets``) or from
    ``data_dirs[task.name]`` (a folder of data files with the hub dataset's columns and split names)."""
    import datasets

    source = _source(task, data_dirs)
    cache = cache_dir() / "hf_datasets"
    try:
        dataset = datasets.load_dataset(source, split=split, cache_dir=str(cache))
    except Exception as err:  # offline, hub unreachable, dataset moved, missing local files, ...
        raise DatasetNotFoundError(
            f"could not load the {split} split of {source!r} (task {task.name}) with datasets.load_dataset "
            f"({type(err).__name__}: {err}). Fix: run once with internet access (it is then cached in {cache} and "
            f"loads offline, also with HF_DATASETS_OFFLINE=1), or copy a filled datasets cache there (PECFT_CACHE "
            f"moves it), or pass data_dirs={{'{task.name}': FOLDER}} with FOLDER holding {split} files with the "
            f"columns {', '.join((task.label_field, *task.text_fields))} of {task.hub_id}"
        ) from err
    missing = sorted({task.label_field, *task.text_fields} - set(dataset.column_names))
    if missing:
        raise ConfigError(
            f"{source} ({split}) lacks the column(s) {', '.join(missing)} that task {task.name} reads; "
            f"it has {', '.join(dataset.column_names)}"
        )
    return dataset


def _labels(task: TextTask, dataset, source: str) -> np.ndarray:
    labels = np.asarray(dataset.with_format("numpy")[task.label_field]).astype(np.int64) - task.first_label
    if len(labels) and (labels.min() < 0 or labels.max() >= len(task.labels)):
        raise ConfigError(
            f"{source}: {task.label_field} values {labels.min() + task.first_label}..{labels.max() + task.first_label} "
            f"do not fit the {len(task.labels)} labels of {task.name} starting at {task.first_label}"
        )
    return labels


def _uniform_subset(n: int, size: int | None, seed: int, what: str) -> np.ndarray:
    if size is None:
        return np.arange(n)
    if size > n:
        raise ConfigError(f"asked for {size} {what}, only {n} exist")
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def sample_task(
    task: TextTask,
    seed: int = 0,
    train_per_class: int | None = 1000,
    test_per_class: int | None = None,
    test_per_task: int | None = OLORA_TEST_SIZE,
    data_dirs: Mapping[str, str | Path] | None = None,
) -> SampledTask:
    """Load both splits of ``task`` and draw the examples (see the module docstring; ``None`` = the whole split)."""
    _check_test_sizes(test_per_class, test_per_task)
    splits = {}
    for split in ("train", "test"):
        dataset = load_task_split(task, split, data_dirs)
        labels = _labels(task, dataset, f"{_source(task, data_dirs)} ({split})")
        if split == "train":
            chosen = per_class_subset(labels, train_per_class, seed)
        elif test_per_class is not None:
            chosen = per_class_subset(labels, test_per_class, seed)
        else:
            chosen = _uniform_subset(len(labels), test_per_task, seed, f"test examples of {task.name}")
        texts = [task.sentence(row) for row in dataset.select(chosen.tolist())]
        splits[split] = (texts, labels[chosen])
    return SampledTask(task, *splits["train"], *splits["test"])


def _sample_in_order(order: int, seed: int, train_per_class: int | None, test_per_class: int | None,
                     test_per_task: int | None, data_dirs: Mapping[str, str | Path] | None) -> list[SampledTask]:
    names = _check_order(order)
    return [sample_task(TASKS[name], seed, train_per_class, test_per_class, test_per_task, data_dirs) for name in names]


def _prompt_examples(task: TextTask, texts: Sequence[str], labels: np.ndarray) -> list[PromptExample]:
    return [PromptExample(build_prompt(task, text), task.labels[y], int(y)) for text, y in zip(texts, labels)]


def olora_generative_tasks(
    order: int = 1,
    seed: int = 0,
    train_per_class: int | None = 1000,
    test_per_class: int | None = None,
    test_per_task: int | None = OLORA_TEST_SIZE,
    data_dirs: Mapping[str, str | Path] | None = None,
) -> list[GenerativeTask]:
    """The four tasks in O-LoRA's ``order`` as (source, target) examples for a sequence-to-sequence model."""
    return [
        GenerativeTask(
            sampled.task.name, sampled.task.labels,
            _prompt_examples(sampled.task, sampled.train_texts, sampled.train_labels),
            _prompt_examples(sampled.task, sampled.test_texts, sampled.test_labels),
        )
        for sampled in _sample_in_order(order, seed, train_per_class, test_per_class, test_per_task, data_dirs)
    ]


def global_label_offsets() -> dict[str, int]:
    """The first global class id of every task in :func:`olora_text` (fixed, whatever the order)."""
    offsets, start = {}, 0
    for name, task in TASKS.items():
        offsets[name] = start
        start += len(task.labels)
    return offsets


def olora_text(
    n_experiences: int = 4,
    seed: int = 0,
    train_per_class: int | None = 1000,
    test_per_class: int | None = None,
    test_per_task: int | None = OLORA_TEST_SIZE,
    order: int = 1,
    max_length: int = 128,
    tokenizer: Any | None = None,
    data_dirs: Mapping[str, str | Path] | None = None,
) -> TextBenchmark:
    """Class-incremental view: one experience per task of O-LoRA's ``order``, over the 33 labels of all tasks.

    Args:
        n_experiences: must be 4 (one experience per task; accepted so that ``BenchmarkConfig`` can build it).
        seed: fixes the sampled examples.
        train_per_class, test_per_class, test_per_task: sample sizes, see the module docstring.
        order: O-LoRA's task order, 1, 2 or 3 (:data:`ORDERS`); it fixes the class order.
        max_length: token ids per example (truncated, padded with the tokenizer's pad id).
        tokenizer: a Hugging Face tokenizer; ``None`` = the offline all-MiniLM-L6-v2 tokenizer.
        data_dirs: local folders replacing hub datasets, by task name, see :func:`load_task_split`.

    Global class ids are fixed per task (:func:`global_label_offsets`); class names are ``"<task>: <label>"``.
    The example texts are in the result's ``texts``.
    """
    if n_experiences != len(TASKS):
        raise ConfigError(
            f"olora_text has one experience per task: n_experiences must be {len(TASKS)}, got {n_experiences}"
        )
    sampled = _sample_in_order(order, seed, train_per_class, test_per_class, test_per_task, data_dirs)
    for s in sampled:
        absent = sorted(set(range(len(s.task.labels))) - set(s.test_labels.tolist()))
        if absent:
            raise ConfigError(
                f"the test draw of {s.task.name} has no example of {', '.join(s.task.labels[k] for k in absent)}, "
                "which a class-incremental scenario needs: raise test_per_task or use test_per_class"
            )
    tokenizer = resolve_tokenizer(tokenizer)
    offsets = global_label_offsets()
    class_names = [f"{name}: {label}" for name, task in TASKS.items() for label in task.labels]
    class_order = [offsets[s.task.name] + k for s in sampled for k in range(len(s.task.labels))]
    texts = {split: [text for s in sampled for text in getattr(s, f"{split}_texts")] for split in ("train", "test")}
    ids = {split: tokenize_texts(texts[split], tokenizer, max_length) for split in texts}
    targets = {
        split: torch.from_numpy(np.concatenate([getattr(s, f"{split}_labels") + offsets[s.task.name] for s in sampled]))
        for split in texts
    }
    scenario = class_incremental_benchmark(
        {split: TensorClassificationDataset(ids[split], targets[split]) for split in ("train", "test")},
        class_order=class_order,
        num_classes_per_exp=[len(s.task.labels) for s in sampled],
    )
    info = {
        "order": order,
        "task_order": [s.task.name for s in sampled],
        "hub_ids": {s.task.name: s.task.hub_id for s in sampled},
        "olora_train_sizes": {s.task.name: s.task.olora_train_size for s in sampled},
        "local_sources": {name: str(path) for name, path in (data_dirs or {}).items()},
        "seed": seed,
        "train_per_class": train_per_class,
        "test_per_class": test_per_class,
        "test_per_task": test_per_task,
        "input_text": "O-LoRA's sentence field (no instruction)",
        **text_info(tokenizer, max_length, (ids["train"], ids["test"])),
    }
    benchmark = ContinualBenchmark("olora_text", scenario, class_order, tuple(class_names), info)
    return with_texts(benchmark, texts)
