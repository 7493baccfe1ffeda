"""Split MNIST and the five domains: the committed files, the benchmarks built from them, and their refusals."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from pecft_lib.benchmarks import BENCHMARKS, get_benchmark
from pecft_lib.benchmarks import grey28_streams as streams
from pecft_lib.checksums import sha256_of
from pecft_lib.errors import ChecksumMismatchError, ConfigError


def row_hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


def test_registered_under_the_names_configs_use():
    assert {"split_mnist", "five_domains"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", sorted(streams.SHA256))
def test_committed_file_matches_its_pin_and_its_record(name):
    path = streams.STREAMS_DIR / f"{name}.npz"
    assert sha256_of(path) == streams.SHA256[name]
    record = streams.stream_sources()[f"{name}.npz"]
    assert record["sha256"] == streams.SHA256[name]
    data = streams.load_stream_file(name)
    assert np.bincount(data["train_labels"]).tolist() == record["train_per_class"]
    assert np.bincount(data["test_labels"]).tolist() == record["test_per_class"]
    assert data["train_images"].dtype == np.uint8 and data["train_images"].shape[1:] == (28, 28)
    assert len(data["class_names"]) == 10


@pytest.mark.parametrize("name", sorted(streams.SHA256))
def test_no_test_image_is_also_a_training_image(name):
    data = streams.load_stream_file(name)
    assert not row_hashes(data["train_images"]) & row_hashes(data["test_images"])


def test_letters_are_tested_on_fonts_never_trained_on():
    record = streams.stream_sources()["letters.npz"]
    assert record["test_fonts"] and len(record["test_fonts"]) < len(record["fonts"])
    assert not any("Noto" in font for font in record["fonts"]), "the pretraining's fonts must not draw a stream"


def test_split_mnist_experiences_and_subsets():
    benchmark = get_benchmark("split_mnist", train_per_class=20, test_per_class=10, seed=3)
    assert benchmark.n_experiences == 5 and benchmark.n_classes == 10
    assert sorted(c for exp in benchmark.classes_per_experience for c in exp) == list(range(10))
    assert [len(exp.dataset) for exp in benchmark.train_stream] == [40] * 5
    assert [len(exp.dataset) for exp in benchmark.test_stream] == [20] * 5
    assert benchmark.class_order == get_benchmark("split_mnist", train_per_class=20, test_per_class=10,
                                                  seed=3).class_order


def test_five_domains_has_one_domain_per_experience():
    benchmark = get_benchmark("five_domains", train_per_class=5, test_per_class=3)
    assert benchmark.n_experiences == 5 and benchmark.n_classes == 50
    assert benchmark.classes_per_experience == [list(range(10 * t, 10 * t + 10)) for t in range(5)]
    for t, domain in enumerate(streams.DOMAINS):
        names = benchmark.class_names[10 * t:10 * t + 10]
        assert all(name.startswith(f"{domain}/") for name in names)
        assert len(benchmark.train_stream[t].dataset) == 50 and len(benchmark.test_stream[t].dataset) == 30
    assert benchmark.class_names[10:12] == ("letters/A", "letters/B")


def test_five_domains_domain_order_moves_the_labels():
    order = ("symbols", "mnist", "letters", "digits8", "fashion_mnist")
    benchmark = get_benchmark("five_domains", train_per_class=2, test_per_class=2, domain_order=order)
    assert benchmark.info["domains"] == list(order)
    assert benchmark.class_names[0].startswith("symbols/") and benchmark.class_names[-1].startswith("fashion_mnist/")


@pytest.mark.parametrize("kwargs, message", [
    ({"n_experiences": 10}, "n_experiences must be 5"),
    ({"domain_order": ("mnist", "letters")}, "permutation"),
    ({"train_per_class": 150}, "digits8 train"),
])
def test_five_domains_refuses_what_it_cannot_build(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        get_benchmark("five_domains", **kwargs)


def test_a_corrupted_stream_file_is_refused(tmp_path, monkeypatch):
    for path in streams.STREAMS_DIR.iterdir():
        shutil.copy(path, tmp_path / path.name)
    corrupted = tmp_path / "mnist.npz"
    corrupted.write_bytes(corrupted.read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setattr(streams, "STREAMS_DIR", tmp_path)
    streams.load_stream_file.cache_clear()
    try:
        with pytest.raises(ChecksumMismatchError, match="git checkout -- pecft_lib/data/streams"):
            streams.load_stream_file("mnist")
    finally:
        streams.load_stream_file.cache_clear()


def test_validation_stream_is_carved_from_training_data_and_never_trained_on():
    common = dict(train_per_class=20, test_per_class=5, seed=1)
    validation = get_benchmark("five_domains", validation_per_class=10, **common)
    assert [len(exp.dataset) for exp in validation.test_stream] == [100] * 5
    assert validation.info["validation_per_class"] == 10
    for t in range(5):
        train = {hashlib.sha1(validation.train_stream[t].dataset[i][0].numpy().tobytes()).hexdigest()
                 for i in range(len(validation.train_stream[t].dataset))}
        held = {hashlib.sha1(validation.test_stream[t].dataset[i][0].numpy().tobytes()).hexdigest()
                for i in range(len(validation.test_stream[t].dataset))}
        assert not train & held
    # the validation images come from the training split: none is a test image
    mnist = streams.load_stream_file("mnist")
    held_mnist = {hashlib.sha1(validation.test_stream[0].dataset[i][0].numpy().tobytes()).hexdigest()
                  for i in range(len(validation.test_stream[0].dataset))}
    test_mnist = {hashlib.sha1(x.numpy().tobytes()).hexdigest()
                  for x in streams.normalise(mnist["test_images"])}
    assert not held_mnist & test_mnist
    with pytest.raises(ConfigError, match="digits8 validation"):
        get_benchmark("five_domains", validation_per_class=200)
