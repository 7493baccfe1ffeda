"""Fashion-MNIST loading: the real files, tiny synthetic IDX files, and every failure with its message."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from conftest import FASHION_MNIST_DEBIAN_DIR, requires_fashion_mnist
from pecft_lib.benchmarks import fashion_mnist as fm
from pecft_lib.benchmarks import BENCHMARKS, get_benchmark
from pecft_lib.errors import ChecksumMismatchError, DatasetNotFoundError, UnknownNameError

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
APT_FIX = "apt-get install dataset-fashion-mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: 0x00 0x00, type 0x08 (uint8), ndim, big-endian uint32 dims, then the payload."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.fixture
def tiny_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    # Non-square images so that a swapped height/width would show.
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(6, 3, 2), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([0, 9, 3, 3, 255, 1], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(4, 3, 2), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([5, 0, 8, 2], dtype=np.uint8),
    }


@pytest.fixture
def tiny_digests(tiny_arrays, monkeypatch) -> dict[str, str]:
    """Point the loader's checksums at the tiny files (sha256 of the decompressed IDX bytes)."""
    digests = {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in tiny_arrays.items()}
    monkeypatch.setattr(fm, "SHA256", digests)
    return digests


def write_files(folder: Path, arrays: dict[str, np.ndarray], gzipped: dict[str, bool] | bool) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gzipped if isinstance(gzipped, bool) else gzipped[name]:
            path = folder / f"{name}.gz"
            path.write_bytes(gzip.compress(data))
        else:
            path = folder / name
            path.write_bytes(data)
        paths[name] = path
    return paths


def assert_same_as(loaded: fm.FashionMNIST, arrays: dict[str, np.ndarray]) -> None:
    pairs = {
        "train-images-idx3-ubyte": loaded.train_images,
        "train-labels-idx1-ubyte": loaded.train_labels,
        "t10k-images-idx3-ubyte": loaded.test_images,
        "t10k-labels-idx1-ubyte": loaded.test_labels,
    }
    for name, got in pairs.items():
        np.testing.assert_array_equal(got, arrays[name].astype(got.dtype), err_msg=name)
        assert got.shape == arrays[name].shape, name
        if "labels" in name:
            assert got.dtype == np.int64, name
        else:
            assert got.dtype == np.uint8, name
    # 255 must stay 255: labels are read as unsigned bytes, then widened
    np.testing.assert_array_equal(loaded.train_labels, [0, 9, 3, 3, 255, 1])


# --------------------------------------------------------------------------------------------- real data


@requires_fashion_mnist
def test_real_fashion_mnist_shapes_and_class_balance():
    data = fm.load_fashion_mnist(download=False)
    assert data.source == str(FASHION_MNIST_DEBIAN_DIR)
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28) and data.test_images.dtype == np.uint8
    assert data.train_labels.shape == (60000,) and data.test_labels.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(data.train_labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.test_labels, minlength=10), [1000] * 10)
    assert data.train_labels.min() == 0 and data.train_labels.max() == 9
    assert data.test_labels.min() == 0 and data.test_labels.max() == 9
    # real pixels, not a constant array: both extremes occur
    assert data.train_images.min() == 0 and data.train_images.max() == 255


# ------------------------------------------------------------------------------------ synthetic IDX files


@pytest.mark.parametrize("layout", ["gzipped", "raw", "mixed"])
def test_synthetic_idx_files_load_exactly(tmp_path, tiny_arrays, tiny_digests, layout):
    gzipped = {"gzipped": True, "raw": False, "mixed": {n: i % 2 == 0 for i, n in enumerate(NAMES)}}[layout]
    write_files(tmp_path, tiny_arrays, gzipped)
    loaded = fm.load_fashion_mnist(root=tmp_path, download=False)
    assert_same_as(loaded, tiny_arrays)
    assert loaded.source == str(tmp_path)


def test_synthetic_idx_files_in_torchvision_layout(tmp_path, tiny_arrays, tiny_digests):
    raw_dir = tmp_path / "FashionMNIST" / "raw"
    write_files(raw_dir, tiny_arrays, gzipped=True)
    loaded = fm.load_fashion_mnist(root=tmp_path, download=False)
    assert_same_as(loaded, tiny_arrays)
    assert loaded.source == str(raw_dir)


def test_root_given_never_downloads(tmp_path, monkeypatch):
    def no_download():
        raise AssertionError("must not download when root= is given")

    monkeypatch.setattr(fm, "_download_with_torchvision", no_download)
    with pytest.raises(DatasetNotFoundError, match="not found"):
        fm.load_fashion_mnist(root=tmp_path, download=True)


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("missing", NAMES)
def test_missing_file_is_named_with_both_fixes(tmp_path, tiny_arrays, tiny_digests, missing):
    present = {name: array for name, array in tiny_arrays.items() if name != missing}
    write_files(tmp_path, present, gzipped=True)
    with pytest.raises(DatasetNotFoundError) as info:
        fm.load_fashion_mnist(root=tmp_path, download=False)
    message = str(info.value)
    assert f"missing {missing}" in message
    for other in set(NAMES) - {missing}:
        assert other not in message  # only the missing file is named
    assert APT_FIX in message
    assert "torchvision" in message
    assert isinstance(info.value, FileNotFoundError)


def _expect_checksum_error(root: Path, bad: Path, expected: str) -> ChecksumMismatchError:
    with pytest.raises(ChecksumMismatchError) as info:
        fm.load_fashion_mnist(root=root, download=False)
    err = info.value
    message = str(err)
    assert str(bad) in message and err.path == str(bad)
    assert f"expected sha256 {expected}" in message and err.expected == expected
    assert APT_FIX in message
    return err


@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gz"])
def test_one_changed_byte_in_the_payload_is_a_checksum_mismatch(tmp_path, tiny_arrays, tiny_digests, gzipped):
    paths = write_files(tmp_path, tiny_arrays, gzipped=gzipped)
    name = "t10k-images-idx3-ubyte"
    corrupted = bytearray(idx_bytes(tiny_arrays[name]))
    corrupted[-1] ^= 0x01  # one pixel of the last image
    paths[name].write_bytes(gzip.compress(bytes(corrupted)) if gzipped else bytes(corrupted))
    err = _expect_checksum_error(tmp_path, paths[name], tiny_digests[name])
    actual = hashlib.sha256(bytes(corrupted)).hexdigest()
    assert actual != tiny_digests[name]
    assert err.actual == actual
    assert f"got {actual}" in str(err)


def test_one_changed_byte_in_the_gzip_trailer_is_a_checksum_mismatch(tmp_path, tiny_arrays, tiny_digests):
    paths = write_files(tmp_path, tiny_arrays, gzipped=True)
    name = "train-labels-idx1-ubyte"
    data = bytearray(paths[name].read_bytes())
    data[-8] ^= 0xFF  # first byte of the CRC32 in the gzip trailer
    paths[name].write_bytes(bytes(data))
    err = _expect_checksum_error(tmp_path, paths[name], tiny_digests[name])
    assert err.actual != tiny_digests[name]


def test_one_changed_byte_in_the_deflate_stream_is_a_checksum_mismatch(tmp_path, tiny_arrays, tiny_digests):
    """A corrupted compressed block (here: the reserved block type 11) makes zlib itself fail; that is a
    corrupted file like any other and must be reported as a checksum mismatch, not as a bare zlib.error."""
    paths = write_files(tmp_path, tiny_arrays, gzipped=True)
    name = "train-images-idx3-ubyte"
    data = bytearray(paths[name].read_bytes())
    header = 10  # gzip.compress writes a 10-byte header without optional fields
    assert data[3] == 0, "no optional gzip header fields expected"
    data[header] |= 0b110  # BTYPE = 11: "invalid block type"
    paths[name].write_bytes(bytes(data))
    err = _expect_checksum_error(tmp_path, paths[name], tiny_digests[name])
    assert err.actual != tiny_digests[name]


def test_truncated_gzip_is_a_checksum_mismatch(tmp_path, tiny_arrays, tiny_digests):
    paths = write_files(tmp_path, tiny_arrays, gzipped=True)
    name = "train-images-idx3-ubyte"
    data = paths[name].read_bytes()
    paths[name].write_bytes(data[: len(data) // 2])
    err = _expect_checksum_error(tmp_path, paths[name], tiny_digests[name])
    assert err.actual != tiny_digests[name]
    assert "unreadable gzip" in str(err)


def test_real_checksums_reject_the_tiny_files(tmp_path, tiny_arrays):
    """Without patching SHA256 the tiny files are not the official release."""
    paths = write_files(tmp_path, tiny_arrays, gzipped=False)
    first = NAMES[0]
    err = _expect_checksum_error(tmp_path, paths[first], fm.SHA256[first])
    assert err.actual == hashlib.sha256(idx_bytes(tiny_arrays[first])).hexdigest()


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No Fashion-MNIST anywhere: Debian folder and download cache are empty temporary folders."""
    debian = tmp_path / "debian"
    cache = tmp_path / "cache"
    debian.mkdir()
    cache.mkdir()
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    monkeypatch.setenv("PECFT_CACHE", str(cache))
    monkeypatch.setattr(fm, "_candidate_dirs", lambda root: [debian, cache / "FashionMNIST" / "raw"])
    return debian, cache


def test_failed_download_gives_one_error_with_both_fixes(nowhere, monkeypatch):
    calls = []

    def offline():
        calls.append(1)
        raise OSError("network unreachable")

    monkeypatch.setattr(fm, "_download_with_torchvision", offline)
    with pytest.raises(DatasetNotFoundError) as info:
        fm.load_fashion_mnist()
    assert calls == [1]
    message = str(info.value)
    assert "network unreachable" in message and "OSError" in message
    assert APT_FIX in message and "torchvision" in message
    assert isinstance(info.value.__cause__, OSError)


def test_download_that_leaves_no_files_is_reported(nowhere, monkeypatch):
    monkeypatch.setattr(fm, "_download_with_torchvision", lambda: None)
    debian, cache = nowhere
    with pytest.raises(DatasetNotFoundError) as info:
        fm.load_fashion_mnist()
    message = str(info.value)
    assert str(debian) in message and str(cache / "FashionMNIST" / "raw") in message
    assert APT_FIX in message and "torchvision" in message


def test_nothing_found_without_download(nowhere, monkeypatch):
    def no_download():
        raise AssertionError("download=False must not download")

    monkeypatch.setattr(fm, "_download_with_torchvision", no_download)
    with pytest.raises(DatasetNotFoundError, match="not found") as info:
        fm.load_fashion_mnist(download=False)
    assert APT_FIX in str(info.value)


def test_default_candidate_dirs_follow_debian_dir_and_cache_env(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "deb")
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path / "c"))
    assert fm._candidate_dirs(None) == [tmp_path / "deb", tmp_path / "c" / "FashionMNIST" / "raw"]
    assert fm._candidate_dirs(tmp_path) == [tmp_path, tmp_path / "FashionMNIST" / "raw"]


def test_unknown_benchmark_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        get_benchmark("split_fashoin_mnist")
    message = str(info.value)
    assert "'split_fashoin_mnist'" in message
    assert "split_fashion_mnist" in message.split("valid choices:")[1]
    assert info.value.choices == sorted(BENCHMARKS)
    assert {"split_fashion_mnist", "split_cifar100", "split_imagenet_r", "wordnet_supersenses", "olora_text"} <= set(BENCHMARKS)
    assert isinstance(info.value, KeyError)
