"""Debian sections: classify a Debian package, given its English description, into its archive section
(``games``, ``science``, ``sound``, ...). Offline: the sample ships with the package.

Data: ``data/streams/debian_sections.jsonl.gz`` (records ``package``, ``section``, ``text``), 2,500 packages of
Debian 12 "bookworm" (point release 12.15, ``main``), checked by sha256 (:data:`DATA_SHA256`); the provenance
file next to it, ``debian_sections.json``, records the release and the sha256 of the two index files it was built
from (``main/binary-amd64/Packages`` for the sections, ``main/i18n/Translation-en`` for the descriptions, joined
on package name and ``Description-md5``), and ``tools/build_text_streams.py debian`` rebuilds it.

Licence: there is no single licence. The descriptions are written by Debian maintainers and upstream authors and
published by the Debian project in the archive's index files; the file is a small research sample of that index
metadata, attributed to the Debian project and the packages' maintainers.

Text: the synopsis, a full stop unless it already ends with punctuation, then the long description with Debian's
markup removed (paragraph-break lines ``" ."``, leading spaces), web and e-mail addresses replaced by ``<url>``
and ``<email>``, and whitespace squeezed, e.g.::

    networked BattleShip game. Batalla Naval is a networked BattleShip game. It supports multiple players and
    multiple robots at the same time.                                                  (gbatnav, section games)

Selection: the sections named after what the software is for (not libs, doc, programming languages, desktops
or catch-alls such as utils and misc; list in the provenance file), descriptions of at least 20 words, one
package per family (packages whose long descriptions begin with the same 20 words: -data and -doc packages,
plugins, language packs); the 10 largest sections with at least 250 such packages, 250 drawn from each (numpy
PCG64, seed 0). Classes, alphabetical, with the packages left before drawing:

    fonts (515), games (843), graphics (402), mail (294), math (283), net (1,394), science (1,313),
    sound (685), text (853), web (381).

Train and test: per section a fixed 200 / 50 split (:func:`~pecft_lib.benchmarks.streams.fixed_split`, the same
for every ``seed``); ``train_per_class`` / ``test_per_class`` texts are drawn from them with ``seed`` (``None``:
all of them).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import seeded_class_order
from .streams import build_text_stream, draw, fixed_split, load_stream, read_provenance, stream_file, texts_by_class
from .text import TextBenchmark, resolve_tokenizer

DATA_FILE = stream_file("debian_sections.jsonl.gz")
DATA_SHA256 = "a0850f2e7f1299d7b21a924ec615ef519a44d1ab8c1cb29aaae076d4bac69ee4"
"""sha256 of :data:`DATA_FILE` (2,500 records, 250 per section)."""

SECTIONS = ("fonts", "games", "graphics", "mail", "math", "net", "science", "sound", "text", "web")
"""The classes, in label order."""


def section_texts(sections: Sequence[str] = SECTIONS) -> dict[str, list[str]]:
    """The verified descriptions of every section in ``sections``, in file order."""
    records = load_stream(DATA_FILE, DATA_SHA256, "pecft_lib.benchmarks.debian_sections.DATA_SHA256")
    return texts_by_class(records, "section", sections, DATA_FILE.name)


def debian_sections(
    n_experiences: int = 5,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    max_length: int = 128,
    tokenizer: Any | None = None,
) -> TextBenchmark:
    """Class-incremental Debian sections: 10 classes in 5 experiences of 2 by default.

    Args:
        n_experiences: number of experiences (must divide the 10 classes).
        seed: fixes the class order (unless ``class_order`` is given) and the drawn texts.
        class_order: explicit order of the classes, overrides ``seed`` for the order.
        train_per_class, test_per_class: texts per class, at most 200 and 50; ``None`` = all.
        max_length: token ids per example (truncated, padded with the tokenizer's pad id).
        tokenizer: a Hugging Face tokenizer; ``None`` = the offline all-MiniLM-L6-v2 tokenizer.

    The raw texts are in the result's ``texts``; ``info`` records the source, checksum and licence note.
    """
    parts = {name: fixed_split(texts) for name, texts in section_texts().items()}
    rng = np.random.default_rng(seed)
    texts = {"train": [], "test": []}
    for name in SECTIONS:
        texts["train"].append(draw(parts[name][0], train_per_class, rng, f"section {name} (training part)"))
        texts["test"].append(draw(parts[name][1], test_per_class, rng, f"section {name} (test part)"))
    provenance = read_provenance(DATA_FILE)
    return build_text_stream(
        "debian_sections", SECTIONS, texts,
        class_order=list(class_order) if class_order is not None else seeded_class_order(len(SECTIONS), seed),
        n_experiences=n_experiences,
        classes_per_experience=None,
        tokenizer=resolve_tokenizer(tokenizer),
        max_length=max_length,
        info={
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "source": provenance["source"],
            "data_sha256": DATA_SHA256,
            "license": provenance["license"],
            "text_format": provenance["text"],
        },
    )
