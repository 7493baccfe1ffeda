"""WordNet noun supersenses: classify a noun synset, given its lemmas and definition, into its lexicographer
file ("supersense": ``noun.animal``, ``noun.food``, ...). Offline, small, the text benchmark of the quick profile.

Data: WordNet 3.0 (Miller 1995; Fellbaum 1998), file ``data.noun``, read from, in order:

1. ``root`` if given (a folder holding ``data.noun``);
2. Debian's package ``wordnet-base`` (``/usr/share/wordnet``);
3. NLTK's WordNet folder ``corpora/wordnet`` under each entry of ``$NLTK_DATA``, then under ``~/nltk_data``.

The file is verified by sha256 (:data:`DATA_NOUN_SHA256`, WordNet 3.0 as shipped by Debian's ``wordnet-base``
1:3.0, which builds the database files during the package build, so they need not be byte-identical to Princeton's
tarball). Only that file is accepted: whether NLTK's copy is byte-identical could not be checked here (no network), so with NLTK's data the
loader may raise :class:`~pecft_lib.errors.ChecksumMismatchError`; other versions (WordNet 3.1, Open English
WordNet) have other synsets and are refused on purpose. Debian does not ship the ``lexnames`` file; the
lexicographer file numbers come from the table of ``lexnames(5WN)`` (:data:`NOUN_LEXNAMES`), which no file can
contradict.

Parsing follows ``wndb(5WN)``: a data line is ``synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id
...] p_cnt [pointers...] | gloss``, ``w_cnt`` in hexadecimal; the license header lines start with two spaces.

Classes: the noun lexicographer files with at least ``min_synsets`` (400) synsets; 23 qualify in WordNet 3.0,
the ``n_classes`` (20) largest are kept (ties broken by name), which drops ``noun.phenomenon`` (641 synsets),
``noun.relation`` (437) and ``noun.feeling`` (428). Class ids follow the lexicographer file numbers:

    noun.act (6,650), noun.animal (7,509), noun.artifact (11,587), noun.attribute (3,039), noun.body (2,016),
    noun.cognition (2,964), noun.communication (5,607), noun.event (1,074), noun.food (2,573),
    noun.group (2,624), noun.location (3,209), noun.object (1,545), noun.person (11,087), noun.plant (8,030),
    noun.possession (1,061), noun.process (770), noun.quantity (1,275), noun.state (3,544),
    noun.substance (2,983), noun.time (1,028).

Examples: per class ``train_per_class`` + ``test_per_class`` distinct synsets drawn with ``seed`` (numpy PCG64),
the first ones for training, the rest for testing (disjoint). The text of a synset is its lemmas, joined by
", " with underscores turned into spaces, a colon, and its gloss's definition without the quoted example
sentences (the gloss is cut at the first ``; "`` or ``: "``). For example::

    dog, domestic dog, Canis familiaris: a member of the genus Canis (probably descended from the common wolf)
    that has been domesticated by man since prehistoric times; occurs in many breeds

Lemmas often name the class (``"… tree"``, ``"… disease"``), which keeps the task learnable with few epochs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import ChecksumMismatchError, ConfigError, DatasetNotFoundError
from .base import TensorClassificationDataset, make_class_incremental, seeded_class_order
from .text import TextBenchmark, resolve_tokenizer, text_info, tokenize_texts, with_texts

DEBIAN_DIR = Path("/usr/share/wordnet")

DATA_NOUN_SHA256 = "fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2"
"""sha256 of WordNet 3.0's ``data.noun`` in Debian's ``wordnet-base`` 1:3.0 (15,300,280 bytes, 82,115 synsets)."""

# Noun lexicographer files and their numbers, from the table of lexnames(5WN).
NOUN_LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact", 7: "noun.attribute", 8: "noun.body",
    9: "noun.cognition", 10: "noun.communication", 11: "noun.event", 12: "noun.feeling", 13: "noun.food",
    14: "noun.group", 15: "noun.location", 16: "noun.motive", 17: "noun.object", 18: "noun.person",
    19: "noun.phenomenon", 20: "noun.plant", 21: "noun.possession", 22: "noun.process", 23: "noun.quantity",
    24: "noun.relation", 25: "noun.shape", 26: "noun.state", 27: "noun.substance", 28: "noun.time",
}
_LEXFILE_NUMBER = {name: number for number, name in NOUN_LEXNAMES.items()}

_EXAMPLE_START = re.compile(r'[;:]\s*"')  # where the quoted example sentences of a gloss begin


@dataclass(frozen=True)
class NounSynset:
    """One line of ``data.noun``: the synset's byte offset, lexicographer file, lemmas and gloss."""

    offset: int
    lexname: str
    lemmas: tuple[str, ...]  # underscores replaced by spaces, WordNet's capitalisation kept
    gloss: str

    @property
    def definition(self) -> str:
        """The gloss without its quoted example sentences."""
        return _EXAMPLE_START.split(self.gloss, maxsplit=1)[0].rstrip(" ;:")

    @property
    def text(self) -> str:
        """The example text: ``"lemma, lemma: definition"``."""
        return f"{', '.join(self.lemmas)}: {self.definition}"


def _how_to_get() -> str:
    return (
        f"install Debian's package (as root: `apt-get install wordnet-base`, files land in {DEBIAN_DIR}), or get "
        "NLTK's copy with `python -c \"import nltk; nltk.download('wordnet', download_dir=DIR)\"` with DIR one of "
        f"{', '.join(map(str, _nltk_roots()))} (unzip DIR/corpora/wordnet.zip there if only the zip was written, "
        "so that DIR/corpora/wordnet/data.noun exists; it is accepted only if byte-identical to Debian's), or pass "
        f"`root=` pointing to a folder holding WordNet 3.0's data.noun (sha256 {DATA_NOUN_SHA256})"
    )


def _nltk_roots() -> list[Path]:
    roots = [Path(entry) for entry in os.environ.get("NLTK_DATA", "").split(os.pathsep) if entry]
    return [*roots, Path.home() / "nltk_data"]


def candidate_dirs(root: str | Path | None = None) -> list[Path]:
    """The folders searched for ``data.noun``, in order (see the module docstring)."""
    if root is not None:
        return [Path(root)]
    return [DEBIAN_DIR, *(nltk_root / "corpora" / "wordnet" for nltk_root in _nltk_roots())]


def parse_data_noun(path: str | Path) -> list[NounSynset]:
    """Every synset of a WordNet ``data.noun`` file, in file order (format: ``wndb(5WN)``)."""
    synsets = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith("  "):  # license header
                continue
            head, separator, gloss = line.partition(" | ")
            fields = head.split()
            if not separator or len(fields) < 5 or not (fields[0] + fields[1]).isdigit() or fields[2] != "n":
                raise ValueError(f"{path}:{number}: not a noun data line of wndb(5WN) format: {line[:80]!r}")
            lex_filenum, word_count = int(fields[1]), int(fields[3], 16)
            if lex_filenum not in NOUN_LEXNAMES:
                raise ValueError(f"{path}:{number}: lex_filenum {lex_filenum} is not a noun lexicographer file")
            words = fields[4: 4 + 2 * word_count: 2]
            if len(words) != word_count:
                raise ValueError(f"{path}:{number}: w_cnt says {word_count} words, the line has {len(words)}")
            synsets.append(NounSynset(
                offset=int(fields[0]),
                lexname=NOUN_LEXNAMES[lex_filenum],
                lemmas=tuple(word.replace("_", " ") for word in words),
                gloss=gloss.strip(),
            ))
    return synsets


def load_wordnet_nouns(root: str | Path | None = None) -> tuple[list[NounSynset], Path]:
    """The verified noun synsets of WordNet 3.0 and the folder they were read from.

    Raises :class:`DatasetNotFoundError` when no searched folder holds ``data.noun`` and
    :class:`ChecksumMismatchError` when the file found is not WordNet 3.0's.
    """
    dirs = candidate_dirs(root)
    folder = next((d for d in dirs if (d / "data.noun").is_file()), None)
    if folder is None:
        raise DatasetNotFoundError(
            f"WordNet's data.noun not found in {', '.join(map(str, dirs))}. Fix: {_how_to_get()}."
        )
    path = folder / "data.noun"
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != DATA_NOUN_SHA256:
        raise ChecksumMismatchError(
            str(path), DATA_NOUN_SHA256, actual,
            "this benchmark is defined on WordNet 3.0's data.noun as shipped by Debian's wordnet-base (other "
            f"versions have other synsets); to get it, {_how_to_get()}",
        )
    return parse_data_noun(path), folder


def select_supersenses(counts: Mapping[str, int], n_classes: int = 20, min_synsets: int = 400) -> list[str]:
    """The ``n_classes`` largest lexicographer files among those with ``min_synsets`` synsets or more (ties
    broken by name), in lexicographer-file-number order."""
    eligible = sorted((name for name, count in counts.items() if count >= min_synsets),
                      key=lambda name: (-counts[name], name))
    if len(eligible) < n_classes:
        raise ConfigError(
            f"only {len(eligible)} noun supersenses have at least {min_synsets} synsets, asked for {n_classes}"
        )
    return sorted(eligible[:n_classes], key=_LEXFILE_NUMBER.__getitem__)


def _split_per_class(labels: np.ndarray, n_classes: int, train_per_class: int, test_per_class: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train and test indices: per class, a seeded permutation's first ``train_per_class`` entries
    and the ``test_per_class`` after them."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in range(n_classes):
        drawn = rng.permutation(np.flatnonzero(labels == cls))
        if train_per_class + test_per_class > len(drawn):
            raise ConfigError(
                f"class {cls} has {len(drawn)} synsets, fewer than train_per_class + test_per_class = "
                f"{train_per_class + test_per_class}"
            )
        train.append(drawn[:train_per_class])
        test.append(drawn[train_per_class: train_per_class + test_per_class])
    return np.concatenate(train), np.concatenate(test)


def wordnet_supersenses(
    n_experiences: int = 5,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    train_per_class: int | None = 300,
    test_per_class: int | None = 100,
    max_length: int = 64,
    tokenizer: Any | None = None,
    n_classes: int = 20,
    min_synsets: int = 400,
    root: str | Path | None = None,
) -> TextBenchmark:
    """Class-incremental WordNet noun supersenses: 20 classes in 5 experiences of 4 by default.

    Args:
        n_experiences: number of experiences (must divide ``n_classes``).
        seed: fixes the class order (unless ``class_order`` is given) and the drawn synsets.
        class_order: explicit order of the classes, overrides ``seed`` for the order.
        train_per_class, test_per_class: synsets per class for training and testing (disjoint); required,
            since the classes differ in size (770 to 11,587 synsets).
        max_length: token ids per example (truncated, padded with the tokenizer's pad id).
        tokenizer: a Hugging Face tokenizer; ``None`` = the offline all-MiniLM-L6-v2 tokenizer.
        n_classes, min_synsets: how the classes are chosen, see :func:`select_supersenses`.
        root: folder holding ``data.noun``, see the module docstring.

    The raw texts are in the result's ``texts``; ``info`` records the source, checksum, class sizes and the
    tokenization.
    """
    for name, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"wordnet_supersenses needs a positive {name} (default 300 train / 100 test), got {value!r}"
            )
    synsets, folder = load_wordnet_nouns(root)
    counts = Counter(synset.lexname for synset in synsets)
    names = select_supersenses(counts, n_classes, min_synsets)
    class_of = {name: index for index, name in enumerate(names)}
    kept = [synset for synset in synsets if synset.lexname in class_of]
    labels = np.array([class_of[synset.lexname] for synset in kept])
    train_idx, test_idx = _split_per_class(labels, n_classes, train_per_class, test_per_class, seed)
    tokenizer = resolve_tokenizer(tokenizer)
    texts = {"train": [kept[i].text for i in train_idx], "test": [kept[i].text for i in test_idx]}
    train_ids, test_ids = (tokenize_texts(texts[split], tokenizer, max_length) for split in ("train", "test"))
    order = list(class_order) if class_order is not None else seeded_class_order(n_classes, seed)
    benchmark = make_class_incremental(
        "wordnet_supersenses",
        TensorClassificationDataset(train_ids, torch.from_numpy(labels[train_idx])),
        TensorClassificationDataset(test_ids, torch.from_numpy(labels[test_idx])),
        n_experiences=n_experiences,
        class_order=order,
        class_names=names,
        info={
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "source": str(folder),
            "data_noun_sha256": DATA_NOUN_SHA256,
            "selection": f"the {n_classes} largest noun lexicographer files with at least {min_synsets} synsets",
            "synsets_per_class": {name: counts[name] for name in names},
            "text_format": "lemma, lemma, ...: definition (gloss without its quoted examples)",
            **text_info(tokenizer, max_length, (train_ids, test_ids)),
        },
    )
    return with_texts(benchmark, texts)
