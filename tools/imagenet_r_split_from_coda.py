"""Rebuild pecft_lib/data/splits/imagenet-r_coda-prompt.json from CODA-Prompt's ImageNet-R split files.

Usage: python tools/imagenet_r_split_from_coda.py TRAIN_YAML TEST_YAML [--source TEXT]

TRAIN_YAML and TEST_YAML are ``dataloaders/splits/imagenet-r_{train,test}.yaml`` of GT-RIPL/CODA-Prompt: lists
``data`` (paths ``data/imagenet-r/<wnid>/<file>.jpg``) and ``targets`` (labels). Prints the new file's sha256,
which goes into ``pecft_lib.benchmarks.split_imagenet_r.SPLIT_SHA256``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml

from pecft_lib.benchmarks.split_imagenet_r import SPLIT_FILE, make_split_record

DEFAULT_SOURCE = (
    "GT-RIPL/CODA-Prompt @ 6417d4f68754be68b697c7ca2323ee61e791e1a3, "
    "dataloaders/splits/imagenet-r_train.yaml and imagenet-r_test.yaml"
)


def read_coda_yaml(path: Path) -> list[tuple[str, int]]:
    """``(relative path '<wnid>/<file>', label)`` pairs of one CODA-Prompt split file."""
    config = yaml.safe_load(path.read_text())
    pairs = []
    for path_in_repo, label in zip(config["data"], config["targets"], strict=True):
        parts = path_in_repo.split("/")
        if parts[:-2] != ["data", "imagenet-r"]:
            raise ValueError(f"unexpected path {path_in_repo!r} in {path}")
        pairs.append(("/".join(parts[-2:]), int(label)))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_yaml", type=Path)
    parser.add_argument("test_yaml", type=Path)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    args = parser.parse_args()
    record = make_split_record(read_coda_yaml(args.train_yaml), read_coda_yaml(args.test_yaml), args.source)
    text = json.dumps(record, indent=1) + "\n"
    SPLIT_FILE.parent.mkdir(parents=True, exist_ok=True)
    SPLIT_FILE.write_text(text)
    print(f"{SPLIT_FILE.name}: {record['n_train']} train, {record['n_test']} test, {len(record['classes'])} classes")
    print(f"sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
