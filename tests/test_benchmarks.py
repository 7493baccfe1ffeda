"""Split Fashion-MNIST on the real data: class order, experience contents, subsets, errors."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from conftest import requires_fashion_mnist
from pecft_lib.benchmarks import split_fashion_mnist
from pecft_lib.benchmarks.fashion_mnist import load_fashion_mnist
from pecft_lib.errors import ConfigError

# the package re-exports the function under the module's name, so fetch the module itself
sfm_module = importlib.import_module("pecft_lib.benchmarks.split_fashion_mnist")

pytestmark = requires_fashion_mnist

SMALL = {"train_per_class": 50, "test_per_class": 20, "download": False}


@pytest.fixture(scope="module")
def fmnist():
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="module")
def bench0():
    """Built through the real loader (no caching involved)."""
    return split_fashion_mnist(seed=0, **SMALL)


@pytest.fixture
def cached_loader(fmnist, monkeypatch):
    """Later builds reuse the arrays loaded once, to keep the module fast."""
    monkeypatch.setattr(sfm_module, "load_fashion_mnist", lambda root=None, download=True: fmnist)


def stacked(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(sample[0], int(sample[1])) for sample in dataset])
    return torch.stack(xs), torch.tensor(ys)


def test_five_experiences_in_the_seeded_class_order(bench0):
    expected_order = np.random.default_rng(0).permutation(10).tolist()
    assert bench0.class_order == expected_order
    assert bench0.n_experiences == 5 and bench0.n_classes == 10
    pairs = [sorted(expected_order[2 * k: 2 * k + 2]) for k in range(5)]
    assert bench0.classes_per_experience == pairs
    for stream in (bench0.train_stream, bench0.test_stream):
        assert [sorted(exp.classes_in_this_experience) for exp in stream] == pairs


def test_experience_sizes_and_labels(bench0):
    for k, (train_exp, test_exp) in enumerate(zip(bench0.train_stream, bench0.test_stream)):
        classes = bench0.classes_per_experience[k]
        assert len(train_exp.dataset) == 100 and len(test_exp.dataset) == 40
        for dataset, per_class in ((train_exp.dataset, 50), (test_exp.dataset, 20)):
            _, labels = stacked(dataset)
            assert set(labels.tolist()) == set(classes)
            assert np.bincount(labels.numpy(), minlength=10)[classes].tolist() == [per_class, per_class]


def test_samples_are_normalized_real_images_of_their_label(bench0, fmnist):
    """Undoing the normalization gives back real training images, each with its own label, no duplicates."""
    by_bytes = {}
    for image, label in zip(fmnist.train_images, fmnist.train_labels):
        by_bytes.setdefault(image.tobytes(), set()).add(int(label))
    seen = set()
    for exp in bench0.train_stream:
        x, y = stacked(exp.dataset)
        assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32
        pixels = np.rint((x.numpy() * 0.3530 + 0.2860) * 255).astype(np.uint8)
        for image, label in zip(pixels[:, 0], y.tolist()):
            key = image.tobytes()
            assert label in by_bytes[key]
            seen.add(key)
    assert len(seen) == 500


def test_a_different_seed_gives_a_different_order(cached_loader, bench0):
    other = split_fashion_mnist(seed=1, **SMALL)
    assert other.class_order == np.random.default_rng(1).permutation(10).tolist()
    assert other.class_order != bench0.class_order
    assert sorted(other.class_order) == list(range(10))


def test_explicit_class_order_is_honoured(cached_loader):
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    bench = split_fashion_mnist(seed=0, class_order=order, **SMALL)
    assert bench.class_order == order
    assert bench.classes_per_experience == [[8, 9], [6, 7], [4, 5], [2, 3], [0, 1]]
    _, labels = stacked(bench.train_stream[0].dataset)
    assert set(labels.tolist()) == {8, 9}


def test_two_experiences_of_five_classes(cached_loader):
    bench = split_fashion_mnist(n_experiences=2, seed=0, **SMALL)
    order = np.random.default_rng(0).permutation(10).tolist()
    assert bench.classes_per_experience == [sorted(order[:5]), sorted(order[5:])]
    assert [len(exp.dataset) for exp in bench.train_stream] == [250, 250]


@pytest.mark.parametrize("n_experiences", [3, 0, 4])
def test_n_experiences_must_divide_the_classes(cached_loader, n_experiences):
    with pytest.raises(ConfigError, match=f"n_experiences={n_experiences}"):
        split_fashion_mnist(n_experiences=n_experiences, seed=0, **SMALL)


@pytest.mark.parametrize(
    "order",
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 8], list(range(9)), list(range(1, 11)), list(range(11))],
    ids=["duplicate", "too_short", "shifted", "too_long"],
)
def test_class_order_must_be_a_permutation(cached_loader, order):
    with pytest.raises(ConfigError, match="permutation"):
        split_fashion_mnist(seed=0, class_order=order, **SMALL)


def test_too_many_examples_per_class_is_a_config_error(cached_loader):
    with pytest.raises(ConfigError, match="1001"):
        split_fashion_mnist(seed=0, train_per_class=50, test_per_class=1001, download=False)


def test_describe_is_json_serialisable(bench0):
    summary = json.loads(json.dumps(bench0.describe()))
    assert summary["name"] == "split_fashion_mnist"
    assert summary["n_experiences"] == 5
    assert summary["class_order"] == np.random.default_rng(0).permutation(10).tolist()
    assert summary["train_sizes"] == [100] * 5 and summary["test_sizes"] == [40] * 5
    assert summary["seed"] == 0 and summary["train_per_class"] == 50 and summary["test_per_class"] == 20
    assert summary["class_names"][0] == "T-shirt/top" and len(summary["class_names"]) == 10


def test_same_seed_gives_identical_subsets(cached_loader, bench0):
    again = split_fashion_mnist(seed=0, **SMALL)
    other_seed = split_fashion_mnist(seed=1, class_order=bench0.class_order, **SMALL)
    differs = False
    for stream in ("train_stream", "test_stream"):
        for a, b, c in zip(getattr(bench0, stream), getattr(again, stream), getattr(other_seed, stream)):
            xa, ya = stacked(a.dataset)
            xb, yb = stacked(b.dataset)
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            xc, _ = stacked(c.dataset)
            differs |= xa.shape != xc.shape or not torch.equal(xa, xc)
    assert differs, "another seed should draw other examples"
