"""Split CIFAR-100 and Split ImageNet-R on tiny synthetic copies of the official on-disk formats: scenario shapes,
class orders, lazy 224-px transforms, the committed CODA-Prompt split, and every failure with its message."""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import shutil
import tarfile
from collections import Counter
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR100
from torchvision.transforms import functional as F

from pecft_lib.benchmarks import BenchmarkConfig, get_benchmark, split_cifar100, split_imagenet_r
from pecft_lib.benchmarks import vision
from pecft_lib.benchmarks.base import seeded_class_order
from pecft_lib.errors import ChecksumMismatchError, DatasetNotFoundError, UnknownNameError

# the package re-exports the functions under the modules' names, so fetch the modules themselves
cifar_module = importlib.import_module("pecft_lib.benchmarks.split_cifar100")
imr_module = importlib.import_module("pecft_lib.benchmarks.split_imagenet_r")

CIFAR_TRAIN_PER_CLASS, CIFAR_TEST_PER_CLASS = 2, 1
IMR_TRAIN_PER_CLASS, IMR_TEST_PER_CLASS = 2, 1


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_image_tensor(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> None:
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert low <= x.min().item() and x.max().item() <= high


# ------------------------------------------------------------------------------------------------ CIFAR-100


@pytest.fixture(scope="module")
def cifar_files(tmp_path_factory) -> dict:
    """``cifar-100-python.tar.gz`` with the official layout (python pickles ``train``, ``test``, ``meta`` with
    ``data`` uint8 [N, 3072] in CHW order and ``fine_labels``), 2 train and 1 test image per class."""
    rng = np.random.default_rng(3)
    build = tmp_path_factory.mktemp("cifar_build")
    folder = build / "cifar-100-python"
    folder.mkdir()
    arrays = {}
    for name, per_class in (("train", CIFAR_TRAIN_PER_CLASS), ("test", CIFAR_TEST_PER_CLASS)):
        labels = np.repeat(np.arange(100), per_class)
        rng.shuffle(labels)
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        entry = {
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
            "batch_label": f"{name} batch",
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
            "data": data,
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        arrays[name] = (data, labels)
    meta = {
        "fine_label_names": [f"class{c:02d}" for c in range(100)],
        "coarse_label_names": [f"super{c}" for c in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    archive = build / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    return {
        "archive": archive,
        "arrays": arrays,
        "md5": {name: md5_of(folder / name) for name in ("train", "test", "meta")},
    }


@pytest.fixture
def cifar_root(cifar_files, tmp_path, monkeypatch) -> Path:
    """A root holding only the archive, with the checksums (ours and torchvision's) pointed at the fixture."""
    md5 = cifar_files["md5"]
    monkeypatch.setattr(cifar_module, "ARCHIVE_SHA256", sha256_of(cifar_files["archive"]))
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {"filename": "meta", "key": "fine_label_names", "md5": md5["meta"]})
    root = tmp_path / "cache"
    root.mkdir()
    shutil.copy(cifar_files["archive"], root / CIFAR100.filename)
    return root


@pytest.fixture
def cifar_bench(cifar_root):
    return split_cifar100(seed=0, root=cifar_root, download=False)


def test_cifar_ten_experiences_of_ten_classes_in_the_seeded_order(cifar_bench):
    order = seeded_class_order(100, 0)
    assert cifar_bench.class_order == order and cifar_bench.n_classes == 100
    expected = [sorted(order[10 * k: 10 * k + 10]) for k in range(10)]
    assert cifar_bench.n_experiences == 10 and cifar_bench.classes_per_experience == expected
    assert [sorted(exp.classes_in_this_experience) for exp in cifar_bench.test_stream] == expected
    assert [len(exp.dataset) for exp in cifar_bench.train_stream] == [10 * CIFAR_TRAIN_PER_CLASS] * 10
    assert [len(exp.dataset) for exp in cifar_bench.test_stream] == [10 * CIFAR_TEST_PER_CLASS] * 10
    assert cifar_bench.class_names[7] == "class07"
    described = cifar_bench.describe()
    assert described["class_order"] == order and described["class_order_given"] is False
    json.dumps(described)  # stored in result records


def test_cifar_items_are_224px_tensors_in_unit_range_with_label_and_task(cifar_bench):
    for stream in (cifar_bench.train_stream, cifar_bench.test_stream):
        x, y, t = stream[3].dataset[0]
        assert_image_tensor(x)
        assert int(y) in stream[3].classes_in_this_experience and t == 0
    info = cifar_bench.info
    assert info["input_scaling"] == "unit" and info["normalization"] is None
    assert info["transform_recipe"] == "coda_prompt"
    assert info["train_transforms"][0].startswith("RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0)")
    assert info["test_transforms"][0].startswith("Resize(size=224")
    assert info["test_transforms"][1:] == ["ToTensor()"]


def test_cifar_natural_class_order_is_possible_and_recorded(cifar_root):
    bench = split_cifar100(class_order=list(range(100)), root=cifar_root, download=False)
    assert bench.classes_per_experience == [list(range(10 * k, 10 * k + 10)) for k in range(10)]
    assert bench.describe()["class_order"] == list(range(100)) and bench.info["class_order_given"] is True


def test_cifar_class_order_follows_the_seed(cifar_root):
    bench = split_cifar100(seed=5, root=cifar_root, download=False)
    assert bench.class_order == seeded_class_order(100, 5) != seeded_class_order(100, 0)
    assert bench.info["seed"] == 5


def test_cifar_transforms_run_lazily_on_the_stored_32px_images(cifar_bench, cifar_files):
    data, labels = cifar_files["arrays"]["test"]
    dataset = cifar_bench.test_stream[0].dataset
    x, y, _ = dataset[0]
    # the test item is the raw 32x32 image resized when read: find it among the raw images by its label
    raw = [Image.fromarray(data[i].reshape(3, 32, 32).transpose(1, 2, 0)) for i in np.flatnonzero(labels == int(y))]
    assert any(torch.equal(x, F.to_tensor(F.resize(image, 224))) for image in raw)
    assert torch.equal(x, dataset[0][0])  # no randomness at test time

    train = cifar_bench.train_stream[0].dataset
    torch.manual_seed(0)
    first, second = train[0][0], train[0][0]
    assert not torch.equal(first, second)  # a new random crop/flip at every read
    assert torch.equal(train.eval()[0][0], train.eval()[0][0])  # the eval group switches augmentation off


def test_cifar_input_scaling_and_recipe_options(cifar_root):
    bench = split_cifar100(
        input_scaling="minus_one_one", transform_recipe="l2p_dualprompt", root=cifar_root, download=False
    )
    x = bench.test_stream[0].dataset[0][0]
    assert_image_tensor(x, -1.0, 1.0)
    assert x.min().item() < 0  # random pixels include dark ones
    assert bench.info["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert "scale=(0.05, 1.0)" in bench.info["train_transforms"][0]
    assert bench.info["test_transforms"][:2] == [
        "Resize(size=256, interpolation=bicubic, max_size=None, antialias=True)",
        "CenterCrop(size=(224, 224))",
    ]
    imagenet = split_cifar100(input_scaling="imagenet", root=cifar_root, download=False)
    assert imagenet.info["normalization"]["mean"] == [0.485, 0.456, 0.406]
    with pytest.raises(UnknownNameError, match="unknown input scaling 'zero_one'.*minus_one_one"):
        split_cifar100(input_scaling="zero_one", root=cifar_root, download=False)
    with pytest.raises(UnknownNameError, match="unknown transform recipe 'jax'.*coda_prompt, l2p_dualprompt"):
        split_cifar100(transform_recipe="jax", root=cifar_root, download=False)


def test_cifar_per_class_subsets_and_config_options(cifar_root):
    config = BenchmarkConfig(
        name="split_cifar100",
        n_experiences=5,
        train_per_class=1,
        options={"root": str(cifar_root), "download": False, "class_order": list(range(100))},
    )
    bench = config.build()
    assert bench.n_experiences == 5 and bench.classes_per_experience[0] == list(range(20))
    assert [len(exp.dataset) for exp in bench.train_stream] == [20] * 5
    assert [len(exp.dataset) for exp in bench.test_stream] == [20 * CIFAR_TEST_PER_CLASS] * 5


def test_cifar_download_goes_through_torchvision_with_the_md5(cifar_files, cifar_root, monkeypatch):
    (cifar_root / CIFAR100.filename).unlink()
    calls = []

    def fake_download(url, root, filename, md5):
        calls.append((url, md5))
        shutil.copy(cifar_files["archive"], Path(root) / filename)

    monkeypatch.setattr(vision, "download_url", fake_download)
    bench = get_benchmark("split_cifar100", root=cifar_root, download=True)
    assert calls == [(CIFAR100.url, "eb9058c3a382ffc7106e4002c42a8d85")]
    assert bench.n_experiences == 10


def test_cifar_damaged_extraction_is_redone_from_the_verified_archive(cifar_root, cifar_files):
    cifar_module.load_cifar100(root=cifar_root, download=False)
    (cifar_root / "cifar-100-python" / "train").write_bytes(b"damaged")
    train, _ = cifar_module.load_cifar100(root=cifar_root, download=False)
    assert md5_of(cifar_root / "cifar-100-python" / "train") == cifar_files["md5"]["train"]
    assert len(train) == 100 * CIFAR_TRAIN_PER_CLASS


def test_cifar_missing_archive_says_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        split_cifar100(root=tmp_path, download=False)
    message = str(err.value)
    assert f"{tmp_path / 'cifar-100-python.tar.gz'} not found" in message
    assert CIFAR100.url in message and cifar_module.ARCHIVE_SHA256 in message
    assert "eb9058c3a382ffc7106e4002c42a8d85" in message and "download=True" in message


def test_cifar_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(vision, "download_url", offline)
    with pytest.raises(DatasetNotFoundError, match=r"download failed \(URLError.*no network.*Fix: .*cifar-100"):
        split_cifar100(root=tmp_path, download=True)


def test_cifar_corrupted_archive_is_a_checksum_error(cifar_root):
    (cifar_root / CIFAR100.filename).write_bytes(b"not the archive")
    with pytest.raises(ChecksumMismatchError) as err:
        split_cifar100(root=cifar_root, download=False)
    assert err.value.expected == cifar_module.ARCHIVE_SHA256
    assert err.value.actual == hashlib.sha256(b"not the archive").hexdigest()
    assert f"delete {cifar_root / CIFAR100.filename}" in str(err.value)


# ------------------------------------------------------------------------------------------------ ImageNet-R


def test_committed_split_is_codas_24000_train_6000_test():
    split = imr_module.load_split()
    record = json.loads(imr_module.SPLIT_FILE.read_text())
    assert (record["n_images"], record["n_train"], record["n_test"]) == (30_000, 24_000, 6_000)
    assert len(split.classes) == len(set(split.classes)) == 200
    assert split.classes[:3] == ("n02165456", "n03594945", "n02325366")  # CODA-Prompt's labels 0, 1, 2
    assert sum(split.images_per_class) == 30_000
    assert len(split.test_indices) == 6_000 and list(split.test_indices) == sorted(set(split.test_indices))
    assert 0 <= split.test_indices[0] and split.test_indices[-1] < 30_000
    # the sorted listing groups the images by wnid, so class boundaries follow from the counts
    counts = dict(zip(split.classes, split.images_per_class))
    bounds = np.cumsum([0] + [counts[wnid] for wnid in sorted(counts)])
    test_per_class = np.diff(np.searchsorted(split.test_indices, bounds))
    train_per_class = np.array([counts[wnid] for wnid in sorted(counts)]) - test_per_class
    assert (test_per_class.min(), test_per_class.max()) == (5, 81)
    assert (train_per_class.min(), train_per_class.max()) == (38, 354)
    assert "GT-RIPL/CODA-Prompt @ 6417d4f" in split.source


@pytest.fixture(scope="module")
def imr_files(tmp_path_factory) -> dict:
    """An ``imagenet-r/<wnid>/<file>.jpg`` tree of 200 fake wnids × 3 tiny JPEGs (plus the archive's top-level
    README.txt), its tar, and a split file in the committed format: labels in a shuffled wnid order (as
    CODA-Prompt's), one test image per class."""
    rng = np.random.default_rng(11)
    build = tmp_path_factory.mktemp("imr_build")
    folder = build / "imagenet-r"
    wnids = [f"n{9_000_000 + 17 * k:08d}" for k in range(200)]
    labels = dict(zip(wnids, rng.permutation(200).tolist()))
    train, test = [], []
    for wnid in wnids:
        (folder / wnid).mkdir(parents=True)
        for k, style in enumerate(("art", "sketch", "toy")):
            size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels) if k else Image.fromarray(pixels[..., 0])  # one grayscale per class
            image.save(folder / wnid / f"{style}_{k}.jpg")
            (test if k == 1 else train).append((f"{wnid}/{style}_{k}.jpg", labels[wnid]))
    (folder / "README.txt").write_text("synthetic\n")
    archive = build / "imagenet-r.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname="imagenet-r")
    split_file = build / "split.json"
    split_file.write_text(json.dumps(imr_module.make_split_record(train, test, "synthetic"), indent=1) + "\n")
    return {"folder": folder, "archive": archive, "split_file": split_file, "labels": labels, "test": test}


@pytest.fixture
def imr_split(imr_files, monkeypatch) -> Path:
    monkeypatch.setattr(imr_module, "SPLIT_FILE", imr_files["split_file"])
    monkeypatch.setattr(imr_module, "SPLIT_SHA256", sha256_of(imr_files["split_file"]))
    monkeypatch.setattr(imr_module, "ARCHIVE_SHA256", sha256_of(imr_files["archive"]))
    return imr_files["split_file"]


@pytest.fixture
def imr_root(imr_files, imr_split, tmp_path) -> Path:
    """A root with the extracted folder only."""
    shutil.copytree(imr_files["folder"], tmp_path / "imagenet-r")
    return tmp_path


def test_imagenet_r_ten_experiences_of_twenty_classes_with_the_split_sizes(imr_root):
    bench = split_imagenet_r(seed=1, root=imr_root, download=False)
    order = seeded_class_order(200, 1)
    assert bench.class_order == order and bench.n_experiences == 10
    assert bench.classes_per_experience == [sorted(order[20 * k: 20 * k + 20]) for k in range(10)]
    assert [len(exp.dataset) for exp in bench.train_stream] == [20 * IMR_TRAIN_PER_CLASS] * 10
    assert [len(exp.dataset) for exp in bench.test_stream] == [20 * IMR_TEST_PER_CLASS] * 10
    for stream in (bench.train_stream, bench.test_stream):
        x, y, t = stream[9].dataset[1]
        assert_image_tensor(x)
        assert int(y) in stream[9].classes_in_this_experience and t == 0
    assert bench.info["test_transforms"][:2] == [
        "Resize(size=256, interpolation=bilinear, max_size=None, antialias=True)",
        "CenterCrop(size=(224, 224))",
    ]
    assert bench.info["split_sha256"] == imr_module.SPLIT_SHA256 and bench.info["split"] == "synthetic"
    json.dumps(bench.describe())


def test_imagenet_r_labels_and_test_images_follow_the_split_file(imr_files, imr_root):
    split = imr_module.load_split()
    train, test = imr_module.load_imagenet_r(split, root=imr_root, download=False)
    assert sorted(test.imgs) == sorted(imr_files["test"])
    assert len(train) == 2 * len(test) == 400
    assert all(label == imr_files["labels"][path.split("/")[0]] for path, label in train.imgs)
    assert Counter(train.targets) == Counter({label: 2 for label in range(200)})


def test_imagenet_r_natural_order_gives_the_split_file_label_blocks(imr_root):
    bench = split_imagenet_r(class_order=list(range(200)), root=imr_root, download=False)
    assert bench.classes_per_experience == [list(range(20 * k, 20 * k + 20)) for k in range(10)]
    assert bench.class_names[0] == imr_module.load_split().classes[0]


def test_imagenet_r_transforms_run_lazily_and_grayscale_becomes_rgb(imr_files, imr_root):
    bench = split_imagenet_r(
        class_order=list(range(200)), transform_recipe="l2p_dualprompt", root=imr_root, download=False
    )
    dataset = bench.test_stream[0].dataset
    x, y, _ = dataset[0]
    path = next(path for path, label in imr_files["test"] if label == int(y))
    image = Image.open(imr_files["folder"] / path).convert("RGB")
    expected = F.to_tensor(F.center_crop(F.resize(image, 256, interpolation=F.InterpolationMode.BICUBIC), 224))
    assert torch.equal(x, expected)
    grayscale_train = bench.train_stream[0].dataset  # art_0.jpg of every class is single-channel on disk
    torch.manual_seed(0)
    assert all(grayscale_train[i][0].shape == (3, 224, 224) for i in range(len(grayscale_train)))
    assert not torch.equal(grayscale_train[0][0], grayscale_train[0][0])


def test_imagenet_r_is_extracted_from_the_verified_archive(imr_files, imr_split, tmp_path):
    shutil.copy(imr_files["archive"], tmp_path / "imagenet-r.tar")
    bench = split_imagenet_r(root=tmp_path, download=False)
    assert (tmp_path / "imagenet-r" / "README.txt").is_file()
    assert sum(len(exp.dataset) for exp in bench.train_stream) == 400


def test_imagenet_r_download_goes_through_torchvision_with_the_md5(imr_files, imr_split, tmp_path, monkeypatch):
    calls = []

    def fake_download(url, root, filename, md5):
        calls.append((url, filename, md5))
        shutil.copy(imr_files["archive"], Path(root) / filename)

    monkeypatch.setattr(vision, "download_url", fake_download)
    bench = split_imagenet_r(root=tmp_path, download=True)
    assert calls == [(imr_module.URL, "imagenet-r.tar", "a61312130a589d0ca1a8fca1f2bd3337")]
    assert bench.n_experiences == 10


def test_imagenet_r_missing_data_says_where_and_how(imr_split, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        split_imagenet_r(root=tmp_path, download=False)
    message = str(err.value)
    assert f"neither {tmp_path / 'imagenet-r'} nor {tmp_path / 'imagenet-r.tar'} exists" in message
    assert "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar" in message
    assert imr_module.ARCHIVE_SHA256 in message and "a61312130a589d0ca1a8fca1f2bd3337" in message
    assert "2,191,079,936 bytes" in message and f"{tmp_path / 'imagenet-r'}/<wnid>/<file>.jpg" in message


def test_imagenet_r_failed_download_is_one_clear_error(imr_split, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(vision, "download_url", offline)
    with pytest.raises(DatasetNotFoundError, match=r"imagenet-r.tar is not in .* download failed \(URLError"):
        split_imagenet_r(root=tmp_path, download=True)


def test_imagenet_r_corrupted_archive_is_a_checksum_error(imr_split, tmp_path):
    (tmp_path / "imagenet-r.tar").write_bytes(b"truncated")
    with pytest.raises(ChecksumMismatchError) as err:
        split_imagenet_r(root=tmp_path, download=False)
    assert err.value.expected == imr_module.ARCHIVE_SHA256
    assert "delete" in str(err.value) and imr_module.URL in str(err.value)


def test_imagenet_r_incomplete_or_rearranged_folder_is_named(imr_root):
    victim = next((imr_root / "imagenet-r").glob("*/sketch_1.jpg"))
    moved = imr_root / "imagenet-r" / "test" / victim.parent.name
    moved.mkdir(parents=True)
    victim.rename(moved / victim.name)  # what the PyTorch DualPrompt loader does to the folder
    with pytest.raises(ChecksumMismatchError) as err:
        split_imagenet_r(root=imr_root, download=False)
    message = str(err.value)
    assert "listing of its 599 images, 600 expected" in message
    assert f"{victim.parent.name}: 2 instead of 3" in message and "Delete" in message


def test_imagenet_r_edited_split_file_is_refused(imr_files, imr_root, tmp_path, monkeypatch):
    edited = tmp_path / "edited.json"
    edited.write_text(imr_files["split_file"].read_text().replace('"n_test": 200', '"n_test": 201'))
    monkeypatch.setattr(imr_module, "SPLIT_FILE", edited)
    with pytest.raises(ChecksumMismatchError, match="force-reinstall pecft_lib.*git checkout -- pecft_lib/data/splits/edited.json"):
        split_imagenet_r(root=imr_root, download=False)


def test_reference_transforms_validate_their_names():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist'"):
        vision.reference_transforms("coda_prompt", "mnist")
    train, test = vision.reference_transforms("coda_prompt", "imagenet_r", "imagenet")
    assert repr(test.transforms[-1]).startswith("Normalize(mean=(0.485, 0.456, 0.406)")


# ------------------------------------------------------------------------------ paper-profile dry runs on CPU


def dry_run(benchmark, tag: str, tuning) -> None:
    """Two AdamW steps of a PEFT classifier on the exact paper architecture (random weights), fed by the
    benchmark's own loader: the shapes, the hooks and the optimiser wiring of a paper run, in seconds."""
    from torch.utils.data import DataLoader

    from pecft_lib.backbones import load_backbone
    from pecft_lib.methods.finetuning import PEFTClassifier

    torch.manual_seed(0)
    model = PEFTClassifier(load_backbone(tag, pretrained=False), benchmark.n_classes, tuning)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    frozen_before = model.backbone.get_parameter("vit.blocks.0.mlp.fc1.weight").clone()
    before = {name: p.detach().clone() for name, p in trainable.items()}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-3)
    images, labels, _ = next(iter(DataLoader(benchmark.train_stream[0].dataset, batch_size=2)))
    assert images.shape == (2, 3, 224, 224)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(before[name], p) for name, p in trainable.items())
    assert torch.equal(model.backbone.get_parameter("vit.blocks.0.mlp.fc1.weight"), frozen_before)


def test_dry_run_cifar100_l2p_checkpoint_with_prompt_tuning(cifar_bench):
    from pecft_lib.methods.finetuning import TuningConfig

    dry_run(cifar_bench, "vit_base_patch16_224.orig_in21k", TuningConfig(method="prompt_tuning", prompt_length=5))


def test_dry_run_cifar100_inflora_checkpoint_with_lora_on_k_and_v(cifar_bench):
    from pecft_lib.methods.finetuning import TuningConfig

    dry_run(cifar_bench, "vit_base_patch16_224.augreg_in21k",
            TuningConfig(method="lora", lora_rank=10, lora_targets=["k", "v"]))


def test_dry_run_imagenet_r_coda_checkpoint_with_prefix_tuning(imr_root):
    from pecft_lib.methods.finetuning import TuningConfig

    benchmark = split_imagenet_r(root=imr_root, download=False)
    dry_run(benchmark, "vit_base_patch16_224.augreg_in21k_ft_in1k",
            TuningConfig(method="prefix_tuning", prefix_length=4, prefix_layers=[0, 1, 2, 3, 4]))
