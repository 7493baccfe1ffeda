"""Committed text samples (``pecft_lib/data/streams/``) and what the benchmarks built on them share.

Each sample is a gzip-compressed JSON-lines file (one record per line, keys sorted, UTF-8, gzip header without
file name and with mtime 0, so the same records always give the same bytes with the same zlib) next to a JSON
provenance file of the same stem. ``tools/build_text_streams.py`` writes both; loaders pin the sha256 of the
``.jsonl.gz`` file and refuse any other content (:func:`load_stream`).

Train and test: every class's texts are split once and for all (:func:`fixed_split`: a permutation drawn with
:data:`SPLIT_SEED`, the first :data:`TEST_FRACTION` of them for testing), whatever the benchmark's ``seed``; the
seed then draws ``train_per_class`` / ``test_per_class`` texts from the two parts (:func:`draw`), so test texts
never appear in training under any seed.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..checksums import verify_sha256
from ..errors import ConfigError
from ..paths import package_data
from .base import TensorClassificationDataset, make_class_incremental
from .text import TextBenchmark, text_info, tokenize_texts, with_texts

TEST_FRACTION = 0.2
SPLIT_SEED = 0
BUILDER = "tools/build_text_streams.py"


def stream_file(name: str) -> Path:
    """A file of the package's ``data/streams/`` folder."""
    return package_data("streams", name)


def write_jsonl_gz(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write ``records`` as deterministic gzip-compressed JSON lines (see the module docstring)."""
    lines = "".join(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n" for record in records)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as archive:
        archive.write(lines.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def read_jsonl_gz(path: Path) -> list[dict[str, Any]]:
    """The records of a gzip-compressed JSON-lines file, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_stream(path: Path, sha256: str, constant: str) -> list[dict[str, Any]]:
    """The records of the committed sample ``path`` after checking that it hashes to ``sha256``.

    ``constant`` names the pinned checksum (e.g. ``"debian_sections.DATA_SHA256"``) for the error message.
    """
    verify_sha256(
        path, sha256,
        f"the file is shipped with pecft_lib: restore it (in a checkout `git checkout -- pecft_lib/data/streams/"
        f"{path.name}`, else reinstall pecft_lib); if you rebuilt it on purpose with {BUILDER}, put the sha256 it "
        f"printed into {constant}",
    )
    return read_jsonl_gz(path)


def read_provenance(data_file: Path) -> dict[str, Any]:
    """The provenance record written next to a sample (``<stem>.json`` for ``<stem>.jsonl.gz``)."""
    return json.loads(data_file.with_name(data_file.name.removesuffix(".jsonl.gz") + ".json").read_text())


def texts_by_class(records: Sequence[Mapping[str, Any]], label_field: str, classes: Sequence[str],
                   source: str) -> dict[str, list[str]]:
    """The ``text`` of the records of every class in ``classes`` (by ``record[label_field]``), in file order."""
    grouped: dict[str, list[str]] = {name: [] for name in classes}
    for record in records:
        if record[label_field] in grouped:
            grouped[record[label_field]].append(record["text"])
    empty = [name for name, texts in grouped.items() if not texts]
    if empty:
        raise ConfigError(f"{source} has no text of class(es) {', '.join(empty)}; its classes are "
                          f"{', '.join(sorted({str(r[label_field]) for r in records}))}")
    return grouped


def fixed_split(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(train part, test part)`` of one class's texts: a permutation drawn with :data:`SPLIT_SEED`, the first
    ``round(TEST_FRACTION * len(texts))`` (at least one) texts for testing, the rest for training."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(texts))
    n_test = max(1, round(TEST_FRACTION * len(texts)))
    return [texts[i] for i in order[n_test:]], [texts[i] for i in order[:n_test]]


def draw(pool: Sequence[str], count: int | None, rng: np.random.Generator, what: str) -> list[str]:
    """``count`` texts of ``pool`` drawn without replacement by ``rng`` (all of them, in pool order, if
    ``count`` is ``None``)."""
    if count is None:
        return list(pool)
    if count < 1 or count > len(pool):
        raise ConfigError(f"asked for {count} texts of {what}, which has {len(pool)}: pick a count from 1 to "
                          f"{len(pool)} (or None for all)")
    return [pool[i] for i in rng.permutation(len(pool))[:count]]


def build_text_stream(
    name: str,
    class_names: Sequence[str],
    texts: Mapping[str, Sequence[Sequence[str]]],
    *,
    class_order: Sequence[int],
    n_experiences: int,
    classes_per_experience: Sequence[int] | None,
    tokenizer: Any,
    max_length: int,
    info: dict[str, Any],
) -> TextBenchmark:
    """A class-incremental :class:`TextBenchmark` from the texts of every class: ``texts["train"][k]`` and
    ``texts["test"][k]`` are the texts of class ``k`` (named ``class_names[k]``)."""
    flat = {split: [text for per_class in texts[split] for text in per_class] for split in ("train", "test")}
    ids = {split: tokenize_texts(flat[split], tokenizer, max_length) for split in flat}
    labels = {
        split: torch.tensor([k for k, per_class in enumerate(texts[split]) for _ in per_class], dtype=torch.int64)
        for split in flat
    }
    benchmark = make_class_incremental(
        name,
        TensorClassificationDataset(ids["train"], labels["train"]),
        TensorClassificationDataset(ids["test"], labels["test"]),
        n_experiences=n_experiences,
        class_order=class_order,
        class_names=class_names,
        classes_per_experience=classes_per_experience,
        info={**info, **text_info(tokenizer, max_length, (ids["train"], ids["test"]))},
    )
    return with_texts(benchmark, flat)
