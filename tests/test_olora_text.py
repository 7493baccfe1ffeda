"""O-LoRA's text benchmark with ``datasets.load_dataset`` replaced by tiny in-memory datasets: prompt format, orders,
labels, seeded per-class sampling, both views, and the error when loading fails."""

from __future__ import annotations

import importlib
import zlib
from collections import Counter

import datasets
import pytest
import torch

from pecft_lib.benchmarks import BenchmarkConfig, get_benchmark
from pecft_lib.errors import ConfigError, DatasetNotFoundError

# the module, not the function of the same name that pecft_lib.benchmarks exports
olora = importlib.import_module("pecft_lib.benchmarks.olora_text")

TRAIN_PER_LABEL, TEST_PER_LABEL = 6, 4


def _rows(task, per_label: int, split: str) -> dict[str, list]:
    """``per_label`` rows of every label of ``task`` with the hub dataset's columns, labels interleaved."""
    columns: dict[str, list] = {task.label_field: [], **{name: [] for name in task.text_fields}}
    for k in range(per_label):
        for y in range(len(task.labels)):
            columns[task.label_field].append(y + task.first_label)
            for name in task.text_fields:
                empty = name == "question_content" and k % 2  # half of the Yahoo questions have no content
                columns[name].append("" if empty else f"{task.name} {split} {name} {y} {k}")
    return columns


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """``datasets.load_dataset`` answering every task's hub id with a small in-memory dataset; records calls."""
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path))
    calls = []
    by_id = {task.hub_id: task for task in olora.TASKS.values()}

    def load_dataset(path, split, cache_dir):
        calls.append((path, split, cache_dir))
        task = by_id[path]
        return datasets.Dataset.from_dict(_rows(task, TRAIN_PER_LABEL if split == "train" else TEST_PER_LABEL, split))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


class HashTokenizer:
    """A stand-in Hugging Face tokenizer: [CLS]=1, one id per word (from its crc32), [SEP]=2, padding 0."""

    pad_token_id = 0
    name_or_path = "hash-words"

    def __call__(self, texts, max_length, truncation, padding, return_tensors):
        rows = []
        for text in texts:
            ids = [1] + [3 + zlib.crc32(w.encode()) % 10_000 for w in text.split()][: max_length - 2] + [2]
            rows.append(ids + [0] * (max_length - len(ids)))
        return {"input_ids": torch.tensor(rows)}


def test_prompt_is_olora_instruction_format():
    agnews = olora.TASKS["agnews"]
    sentence = agnews.sentence({"title": "Intel readies chips", "description": "Intel Corp. said on Monday ..."})
    assert sentence == "Title: Intel readies chips\nText: Intel Corp. said on Monday ...\n"
    assert olora.build_prompt(agnews, sentence) == (
        "Task:TC\n"
        "Dataset:agnews\n"
        "What is the topic of the following paragraph? Choose one from the option.\n"
        "Option: World, Sports, Business, Science or Technology \n"
        "Title: Intel readies chips\nText: Intel Corp. said on Monday ...\n"
        "\nAnswer:"
    )
    amazon = olora.TASKS["amazon"]
    assert olora.build_prompt(amazon, "Title: t\nText: b\n") == (
        "Task:SC\nDataset:amazon\nWhat is the sentiment of the following paragraph? Choose one from the option.\n"
        "Option: very negative, negative, neutral, positive, very positive \nTitle: t\nText: b\n\nAnswer:"
    )


def test_yahoo_and_dbpedia_sentences():
    yahoo = olora.TASKS["yahoo"]
    assert yahoo.sentence({"question_title": "Why?", "question_content": "Really, why?", "best_answer": "Because."}) \
        == "Title: Why?\nQuestion: Really, why?\nAnswer: Because.\n"
    assert yahoo.sentence({"question_title": "Why?", "question_content": "", "best_answer": "Because."}) \
        == "Question: Why?\nAnswer: Because.\n"
    dbpedia = olora.TASKS["dbpedia"]
    assert dbpedia.sentence({"title": "Abbey", "content": " An abbey."}) == "Title: Abbey\nText:  An abbey.\n"


def test_the_three_orders():
    assert olora.ORDERS == {
        1: ("dbpedia", "amazon", "yahoo", "agnews"),
        2: ("dbpedia", "amazon", "agnews", "yahoo"),
        3: ("yahoo", "amazon", "agnews", "dbpedia"),
    }


def test_label_sets_and_hub_datasets():
    labels = {name: task.labels for name, task in olora.TASKS.items()}
    assert labels["agnews"] == ("World", "Sports", "Business", "Science or Technology")
    assert labels["amazon"] == ("very negative", "negative", "neutral", "positive", "very positive")
    assert labels["dbpedia"] == (
        "Company", "Educational Institution", "Artist", "Athlete", "Office Holder", "Mean of Transportation",
        "Building", "Natural Place", "Village", "Animal", "Plant", "Album", "Film", "Written Work")
    assert labels["yahoo"] == (
        "Society & Culture", "Science & Mathematics", "Health", "Education & Reference", "Computers & Internet",
        "Sports", "Business & Finance", "Entertainment & Music", "Family & Relationships", "Politics & Government")
    assert {name: task.hub_id for name, task in olora.TASKS.items()} == {
        "dbpedia": "fancyzhx/dbpedia_14",
        "amazon": "yassiracharki/Amazon_Reviews_for_Sentiment_Analysis_fine_grained_5_classes",
        "yahoo": "community-datasets/yahoo_answers_topics",
        "agnews": "sh0416/ag_news",
    }
    # O-LoRA's training files hold about 1,000 examples per class
    assert all(task.olora_train_size == 1000 * len(task.labels) for task in olora.TASKS.values())
    assert olora.global_label_offsets() == {"dbpedia": 0, "amazon": 14, "yahoo": 19, "agnews": 29}


def test_per_class_sampling_counts(fake_hub, tmp_path):
    sampled = olora.sample_task(olora.TASKS["amazon"], seed=0, train_per_class=3, test_per_class=None, test_per_task=7)
    assert Counter(sampled.train_labels.tolist()) == {y: 3 for y in range(5)}
    assert len(sampled.test_texts) == len(sampled.test_labels) == 7
    balanced = olora.sample_task(olora.TASKS["amazon"], seed=0, train_per_class=2, test_per_class=1, test_per_task=None)
    assert Counter(balanced.test_labels.tolist()) == {y: 1 for y in range(5)}
    whole = olora.sample_task(olora.TASKS["amazon"], train_per_class=None, test_per_task=None)
    assert len(whole.train_texts) == 5 * TRAIN_PER_LABEL and len(whole.test_texts) == 5 * TEST_PER_LABEL
    # texts and labels stay aligned: the fake text names its label
    for text, y in zip(sampled.train_texts, sampled.train_labels):
        assert text.startswith(f"Title: amazon train review_title {y} ")
    assert {call[2] for call in fake_hub} == {str(tmp_path / "hf_datasets")}


def test_sampling_is_determined_by_the_seed(fake_hub):
    amazon = olora.TASKS["amazon"]
    first, again, other = (olora.sample_task(amazon, seed, train_per_class=3, test_per_task=7) for seed in (0, 0, 1))
    assert first.train_texts == again.train_texts and first.test_texts == again.test_texts
    assert first.train_texts != other.train_texts


def test_sampling_errors(fake_hub):
    amazon = olora.TASKS["amazon"]
    with pytest.raises(ConfigError, match="not both"):
        olora.sample_task(amazon, train_per_class=3, test_per_class=2, test_per_task=7)
    with pytest.raises(ConfigError, match=f"asked for {TRAIN_PER_LABEL + 1} examples of class 0"):
        olora.sample_task(amazon, train_per_class=TRAIN_PER_LABEL + 1)
    with pytest.raises(ConfigError, match="asked for 100 test examples of amazon, only 20 exist"):
        olora.sample_task(amazon, train_per_class=1, test_per_task=100)


def test_generative_view_follows_the_order(fake_hub):
    tasks = olora.olora_generative_tasks(order=3, seed=0, train_per_class=2, test_per_task=5)
    assert [t.name for t in tasks] == ["yahoo", "amazon", "agnews", "dbpedia"]
    for task in tasks:
        spec = olora.TASKS[task.name]
        assert task.labels == spec.labels
        assert len(task.train) == 2 * len(spec.labels) and len(task.test) == 5
        for example in task.train + task.test:
            assert example.target == spec.labels[example.label]
            assert example.source.startswith(f"Task:{spec.task_type}\nDataset:{task.name}\n")
            assert example.source.endswith("\nAnswer:")
    for example in tasks[2].train:  # the fake texts name their label: source, target and label agree
        title_line = example.source.split("\n")[4]
        assert title_line.startswith(f"Title: agnews train title {example.label} ")


def test_class_incremental_view(fake_hub):
    bench = olora.olora_text(seed=0, train_per_class=2, test_per_class=1, test_per_task=None, order=1,
                             max_length=16, tokenizer=HashTokenizer())
    assert bench.n_experiences == 4 and bench.n_classes == 33
    assert bench.class_order == list(range(33))  # order 1 is the order of TASKS
    assert [len(classes) for classes in bench.classes_per_experience] == [14, 5, 10, 4]
    assert bench.classes_per_experience[1] == list(range(14, 19))
    assert [len(e.dataset) for e in bench.train_stream] == [28, 10, 20, 8]
    assert [len(e.dataset) for e in bench.test_stream] == [14, 5, 10, 4]
    assert bench.class_names[14] == "amazon: very negative" and bench.class_names[32] == "agnews: Science or Technology"
    assert bench.info["task_order"] == ["dbpedia", "amazon", "yahoo", "agnews"]
    assert bench.info["pad_token_id"] == 0 and bench.info["max_length"] == 16
    x, y, _ = bench.train_stream[3].dataset[0]
    assert x.dtype == torch.int64 and x.shape == (16,) and 29 <= y <= 32
    assert len(bench.texts["train"]) == 66 and len(bench.texts["test"]) == 33
    assert "texts" not in bench.describe()


def test_class_incremental_view_order_3(fake_hub):
    bench = olora.olora_text(seed=0, train_per_class=1, test_per_class=1, test_per_task=None, order=3, max_length=8,
                             tokenizer=HashTokenizer())
    assert bench.class_order == [*range(19, 29), *range(14, 19), *range(29, 33), *range(0, 14)]
    assert [len(classes) for classes in bench.classes_per_experience] == [10, 5, 4, 14]
    assert [sorted(classes) for classes in bench.classes_per_experience] == [
        list(range(19, 29)), list(range(14, 19)), list(range(29, 33)), list(range(0, 14))]


def test_class_incremental_view_needs_every_class_in_the_test_draw(fake_hub):
    with pytest.raises(ConfigError, match="test draw of dbpedia has no example of"):
        olora.olora_text(train_per_class=1, test_per_task=3, order=1, tokenizer=HashTokenizer())


def test_registry_and_config(fake_hub):
    bench = BenchmarkConfig(
        name="olora_text", n_experiences=4, seed=0, train_per_class=1, test_per_class=1,
        options={"order": 2, "max_length": 8, "test_per_task": None, "tokenizer": HashTokenizer()},
    ).build()
    assert bench.info["task_order"] == ["dbpedia", "amazon", "agnews", "yahoo"]
    with pytest.raises(ConfigError, match="n_experiences must be 4"):
        get_benchmark("olora_text", n_experiences=5, tokenizer=HashTokenizer())
    with pytest.raises(ConfigError, match="order must be one of 1, 2, 3"):
        get_benchmark("olora_text", order=4, tokenizer=HashTokenizer())


def test_unreachable_hub_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path))

    def offline(path, split, cache_dir):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        olora.olora_generative_tasks(order=1)
    message = str(err.value)
    assert "'fancyzhx/dbpedia_14'" in message and "task dbpedia" in message
    assert "ConnectionError" in message and "internet" in message
    assert str(tmp_path / "hf_datasets") in message
    assert "data_dirs={'dbpedia': FOLDER}" in message and "label, title, content" in message
    assert isinstance(err.value.__cause__, ConnectionError)


def test_local_folders_replace_hub_ids(monkeypatch, tmp_path):
    paths = []

    def load_dataset(path, split, cache_dir):
        paths.append(path)
        return datasets.Dataset.from_dict(_rows(olora.TASKS["agnews"], 2, split))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    sampled = olora.sample_task(olora.TASKS["agnews"], train_per_class=1, test_per_task=2,
                                data_dirs={"agnews": tmp_path / "ag"})
    assert paths == [str(tmp_path / "ag")] * 2 and len(sampled.train_texts) == 4


def test_wrong_columns_or_labels_are_reported(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda path, split, cache_dir: datasets.Dataset.from_dict({"text": ["a"], "label": [0]}))
    with pytest.raises(ConfigError, match="lacks the column.*description, title"):
        olora.sample_task(olora.TASKS["agnews"])
    monkeypatch.setattr(datasets, "load_dataset", lambda path, split, cache_dir: datasets.Dataset.from_dict(
        {"label": [0, 1], "title": ["a", "b"], "description": ["c", "d"]}))  # 0-based where 1-based is expected
    with pytest.raises(ConfigError, match="label values 0..1 do not fit the 4 labels of agnews starting at 1"):
        olora.sample_task(olora.TASKS["agnews"])
