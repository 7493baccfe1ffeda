"""The text streams built on committed samples: debian_sections and text_domains (one domain per experience)."""

from __future__ import annotations

import gzip
import importlib
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from pecft_lib.backbones import minilm
from pecft_lib.benchmarks import BENCHMARKS, BenchmarkConfig
from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental, seeded_class_order
from pecft_lib.benchmarks.streams import fixed_split, read_jsonl_gz, write_jsonl_gz
from pecft_lib.errors import ChecksumMismatchError, ConfigError

# the modules, not the functions of the same names that pecft_lib.benchmarks exports
debian = importlib.import_module("pecft_lib.benchmarks.debian_sections")
domains = importlib.import_module("pecft_lib.benchmarks.text_domains")
wordnet = importlib.import_module("pecft_lib.benchmarks.wordnet_supersenses")

requires_minilm = pytest.mark.skipif(
    not all((minilm.minilm_folder() / name).is_file() for name in minilm.FILES),
    reason="all-MiniLM-L6-v2 not extracted (`python -m pecft_lib.backbones.minilm`)",
)
requires_wordnet = pytest.mark.skipif(
    not (wordnet.DEBIAN_DIR / "data.noun").is_file(),
    reason=f"WordNet not installed ({wordnet.DEBIAN_DIR}/data.noun is absent; `apt-get install wordnet-base` as root)",
)
SAMPLES = {  # committed file -> (pinned sha256, label field, records per class)
    debian.DATA_FILE: (debian.DATA_SHA256, "section", 250),
    domains.FORTUNES_FILE: (domains.FORTUNES_SHA256, "category", 300),
    domains.SPAM_FILE: (domains.SPAM_SHA256, "label", 500),
}


def _label_of_text(path: Path, field: str, prefix: str = "") -> dict[str, str]:
    return {record["text"]: prefix + record[field] for record in read_jsonl_gz(path)}


def _examples(bench, split: str) -> list[tuple[torch.Tensor, int]]:
    return [(x, y) for exp in getattr(bench, f"{split}_stream") for x, y, _ in exp.dataset]


def _check_labels_follow_texts(bench, label_of_text: dict[str, str], max_length: int) -> None:
    """Every example's label is the class of the text whose token ids it carries."""
    tokenizer = minilm.load_minilm_tokenizer()
    for split in ("train", "test"):
        texts = bench.texts[split]
        ids = tokenizer(texts, max_length=max_length, truncation=True, padding="max_length", return_tensors="pt")
        text_of = {tuple(row.tolist()): text for row, text in zip(ids["input_ids"], texts)}
        examples = _examples(bench, split)
        assert len(text_of) == len(examples) == len(texts)
        for x, y in examples:
            assert bench.class_names[y] == label_of_text[text_of[tuple(x.tolist())]]


def _class_counts(bench, split: str) -> list[int]:
    targets = torch.tensor([y for _, y in _examples(bench, split)])
    return torch.bincount(targets, minlength=bench.n_classes).tolist()


def test_registry_has_both_streams():
    assert {"debian_sections", "text_domains"} <= set(BENCHMARKS)
    assert BENCHMARKS["debian_sections"] is debian.debian_sections
    assert BENCHMARKS["text_domains"] is domains.text_domains


@pytest.mark.parametrize("path", list(SAMPLES), ids=lambda path: path.name)
def test_committed_samples_match_their_pins_and_provenance(path):
    sha256, field, per_class = SAMPLES[path]
    provenance = json.loads(path.with_name(path.name.removesuffix(".jsonl.gz") + ".json").read_text())
    assert provenance["sha256"] == sha256 and provenance["bytes"] == path.stat().st_size < 1_500_000
    assert provenance["license"] and provenance["command"].count("tools/build_text_streams.py") == 1
    records = debian.load_stream(path, sha256, "PIN")
    assert len(records) == provenance["records"]
    counts = Counter(record[field] for record in records)
    assert set(counts.values()) == {per_class} and dict(counts) == provenance["per_class"]
    assert len({record["text"] for record in records}) == len(records)  # no duplicate texts


def _small_domains() -> None:
    domains.text_domains(train_per_class=2, test_per_class=1)


@pytest.mark.parametrize("module, attribute, build", [
    (debian, "DATA_FILE", lambda: debian.debian_sections(train_per_class=2, test_per_class=1)),
    pytest.param(domains, "FORTUNES_FILE", _small_domains, marks=requires_wordnet),  # WordNet is read first
    pytest.param(domains, "SPAM_FILE", _small_domains, marks=requires_wordnet),
])
def test_a_corrupted_sample_is_refused(tmp_path, monkeypatch, module, attribute, build):
    original = getattr(module, attribute)
    damaged = tmp_path / original.name
    shutil.copy(original, damaged)
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    monkeypatch.setattr(module, attribute, damaged)
    with pytest.raises(ChecksumMismatchError) as err:
        build()
    assert err.value.path == str(damaged) and err.value.expected == SAMPLES[original][0]
    assert f"git checkout -- pecft_lib/data/streams/{original.name}" in str(err.value)


def test_write_jsonl_gz_is_deterministic(tmp_path):
    records = [{"text": "caf\u00e9 au lait", "label": "b"}, {"label": "a", "text": "tea"}]
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_jsonl_gz(first, records)
    write_jsonl_gz(second, list(records))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert gzip.decompress(first.read_bytes()).decode().splitlines()[0] == '{"label": "b", "text": "café au lait"}'
    assert read_jsonl_gz(first) == records


def test_uneven_experiences_are_checked(blobs):
    data = TensorClassificationDataset(blobs.train_x, blobs.train_y), TensorClassificationDataset(blobs.test_x,
                                                                                                  blobs.test_y)
    uneven = make_class_incremental("blobs", *data, n_experiences=2, class_order=[3, 0, 1, 2],
                                    class_names="abcd", info={}, classes_per_experience=[1, 3])
    assert uneven.classes_per_experience == [[3], [0, 1, 2]]
    for sizes in ([2, 1], [4, 0], [1, 1, 2]):
        with pytest.raises(ConfigError, match="classes_per_experience"):
            make_class_incremental("blobs", *data, n_experiences=2, class_order=[0, 1, 2, 3], class_names="abcd",
                                   info={}, classes_per_experience=sizes)


# --- debian_sections --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_debian():
    return debian.debian_sections(seed=1, train_per_class=12, test_per_class=4, max_length=96)


@requires_minilm
def test_debian_sections_experiences_and_counts(small_debian):
    bench = small_debian
    assert bench.class_names == debian.SECTIONS and bench.n_experiences == 5
    assert bench.class_order == seeded_class_order(10, 1)
    assert bench.classes_per_experience == [sorted(bench.class_order[2 * k: 2 * k + 2]) for k in range(5)]
    assert _class_counts(bench, "train") == [12] * 10 and _class_counts(bench, "test") == [4] * 10
    assert not set(bench.texts["train"]) & set(bench.texts["test"])
    assert bench.info["data_sha256"] == debian.DATA_SHA256 and "no single licence" in bench.info["license"]
    assert bench.info["source"]["distribution"]["Codename"] == "bookworm"
    assert bench.info["tokenizer"] == "all-MiniLM-L6-v2" and bench.info["max_length"] == 96


@requires_minilm
def test_debian_sections_labels_follow_the_texts(small_debian):
    _check_labels_follow_texts(small_debian, _label_of_text(debian.DATA_FILE, "section"), 96)


@requires_minilm
def test_debian_sections_test_part_is_fixed_and_never_trained_on():
    full = debian.debian_sections(seed=0, max_length=8)
    train, test = set(full.texts["train"]), set(full.texts["test"])
    assert len(train) == 2000 and len(test) == 500 and not train & test
    drawn = [debian.debian_sections(seed=seed, train_per_class=5, test_per_class=5, max_length=8) for seed in (1, 2)]
    assert drawn[0].texts["train"] != drawn[1].texts["train"]
    for bench in drawn:  # other seeds draw other texts, but from the same test part
        assert set(bench.texts["test"]) <= test and set(bench.texts["train"]) <= train


@requires_minilm
def test_debian_sections_needs_equal_experiences():
    with pytest.raises(ConfigError, match="must divide the 10 classes"):
        debian.debian_sections(n_experiences=3, train_per_class=2, test_per_class=1)


def test_debian_sections_says_which_class_is_too_small():
    with pytest.raises(ConfigError, match="asked for 51 texts of section fonts .test part., which has 50"):
        debian.debian_sections(train_per_class=2, test_per_class=51)


# --- text_domains -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_domains():
    return domains.text_domains(seed=2, train_per_class=10, test_per_class=3, max_length=96,
                                domain_order=["fortunes", "spam", "wordnet", "debian"])


@requires_minilm
@requires_wordnet
def test_text_domains_has_one_experience_per_domain(small_domains):
    bench = small_domains
    assert bench.n_experiences == 4 and bench.n_classes == 17
    names = [[bench.class_names[c] for c in classes] for classes in bench.classes_per_experience]
    assert names == [[f"{name}/{label}" for label in domains.DOMAINS[name].classes]
                     for name in ["fortunes", "spam", "wordnet", "debian"]]
    assert bench.class_names[5] == "debian/games" and bench.class_names[16] == "spam/spam"
    assert _class_counts(bench, "train") == [10] * 17 and _class_counts(bench, "test") == [3] * 17
    assert [len(e.dataset) for e in bench.test_stream] == [15, 6, 15, 15]
    assert not set(bench.texts["train"]) & set(bench.texts["test"])
    info = bench.info
    assert info["domains"] == ["fortunes", "spam", "wordnet", "debian"]
    assert info["classes_per_domain"]["spam"] == ["ham", "spam"]
    assert set(info["sources"]) == set(info["licenses"]) == set(domains.DOMAINS)
    assert "PDDL" in info["licenses"]["spam"] and "BSD" in info["licenses"]["fortunes"]
    assert info["sources"]["fortunes"]["version"] == "1:1.99.1-7.3"


@requires_minilm
@requires_wordnet
def test_text_domains_labels_follow_the_texts(small_domains):
    label_of_text = {
        **_label_of_text(debian.DATA_FILE, "section", "debian/"),
        **_label_of_text(domains.FORTUNES_FILE, "category", "fortunes/"),
        **_label_of_text(domains.SPAM_FILE, "label", "spam/"),
    }
    synsets, _ = wordnet.load_wordnet_nouns()
    label_of_text.update({s.text: f"wordnet/{s.lexname}" for s in synsets if s.text not in label_of_text})
    _check_labels_follow_texts(small_domains, label_of_text, 96)


@requires_minilm
@requires_wordnet
def test_text_domains_validation_comes_from_the_training_part(small_domains):
    """With validation_per_class, the evaluation texts are carved out of the training part (no test text read)
    and are never trained on; the training texts are drawn from the rest."""
    bench = domains.text_domains(seed=2, train_per_class=10, validation_per_class=4, max_length=96,
                                 domain_order=["fortunes", "spam", "wordnet", "debian"])
    assert _class_counts(bench, "train") == [10] * 17 and _class_counts(bench, "test") == [4] * 17
    validation, train = set(bench.texts["test"]), set(bench.texts["train"])
    assert not validation & train
    assert not validation & set(small_domains.texts["test"])  # the test part of the same seed
    training_parts = {text for domain in domains.DOMAINS.values()
                      for class_texts in domain.texts(domain).values() for text in fixed_split(class_texts)[0]}
    assert validation <= training_parts
    assert bench.info["validation_per_class"] == 4


@pytest.mark.parametrize("settings, message", [
    (dict(validation_per_class=0), "needs a positive validation_per_class"),
    (dict(n_experiences=5), "one experience per domain .* n_experiences must be 4, got 5"),
    (dict(n_experiences=2), "n_experiences must be 4, got 2"),
    (dict(domain_order=["spam", "wordnet", "debian"]), "domain_order must list each of the domains"),
    (dict(domain_order=["spam", "spam", "debian", "wordnet"]), "domain_order must list each of the domains"),
    (dict(train_per_class=None), "needs a positive train_per_class"),
])
def test_text_domains_checks_its_arguments(settings, message):
    with pytest.raises(ConfigError, match=message):
        domains.text_domains(**{"train_per_class": 2, "test_per_class": 1, **settings})


@requires_wordnet
def test_text_domains_says_which_class_is_too_small():
    with pytest.raises(ConfigError, match="asked for 51 texts of debian/games .test part., which has 50"):
        domains.text_domains(train_per_class=2, test_per_class=51)
    with pytest.raises(ConfigError, match="validation_per_class=200 leaves no training text of debian/games"):
        domains.text_domains(train_per_class=2, validation_per_class=200)


@requires_minilm
@requires_wordnet
def test_text_domains_builds_from_a_config():
    bench = BenchmarkConfig(name="text_domains", n_experiences=4, train_per_class=3, test_per_class=2,
                            options={"max_length": 16}).build()
    assert bench.info["domains"] == list(domains.DOMAINS)
    assert [len(e.dataset) for e in bench.train_stream] == [15, 15, 15, 6]


def test_debian_sections_docstring_matches_the_provenance():
    provenance = json.loads(debian.DATA_FILE.with_name("debian_sections.json").read_text())
    documented = " ".join(debian.__doc__.split())
    left = provenance["packages_left_per_section"]
    assert sorted(provenance["per_class"]) == list(debian.SECTIONS)
    assert all(f"{section} ({left[section]:,})" in documented for section in debian.SECTIONS)
    assert provenance["source"]["distribution"]["Version"] in documented
    texts = [text for per_section in debian.section_texts().values() for text in per_section]
    assert not [text for text in texts if re.search(r"\b(?:https?|ftp)://\S", text)]  # addresses are masked
    assert sum("<url>" in text for text in texts) > 10
