"""Linear-probe accuracy of ``pecft-vit-tiny`` next to two baselines, written to ``pecft_lib/data/pecft-vit-tiny/probe.json``.

The same probe (standardised features → logistic regression by L-BFGS on the 60,000 training images → top-1
on the 10,000 test images) is applied to

* the committed pretrained weights ([CLS] after the final norm),
* the same architecture with random weights (seed 0),
* the raw pixels (784 values per image).

    python tools/probe_vit_tiny.py
"""

from __future__ import annotations

import json
import time

import torch

from pecft_lib.backbones import load_backbone
from pecft_lib.backbones.vit_tiny import WEIGHTS_DIR
from pecft_lib.benchmarks.fashion_mnist import load_fashion_mnist
from pecft_lib.benchmarks.split_fashion_mnist import normalise
from pecft_lib.evaluation.probe import extract_features, linear_probe
from pecft_lib.repro import seed_everything


def main() -> None:
    torch.set_num_threads(2)
    data = load_fashion_mnist()
    train_x, test_x = normalise(data.train_images), normalise(data.test_images)
    train_y, test_y = torch.from_numpy(data.train_labels), torch.from_numpy(data.test_labels)
    seed_everything(0)
    candidates = {
        "pecft-vit-tiny (pretrained)": load_backbone("pecft-vit-tiny"),
        "pecft-vit-tiny (random weights)": load_backbone("pecft-vit-tiny", pretrained=False),
    }
    results = {}
    for name, backbone in candidates.items():
        start = time.perf_counter()
        results[name] = linear_probe(extract_features(backbone, train_x), train_y,
                                     extract_features(backbone, test_x), test_y)
        print(f"{name}: test {results[name]['test_accuracy']:.2%} ({time.perf_counter() - start:.0f} s)", flush=True)
    results["raw pixels"] = linear_probe(train_x.flatten(1), train_y, test_x.flatten(1), test_y)
    print(f"raw pixels: test {results['raw pixels']['test_accuracy']:.2%}")
    (WEIGHTS_DIR / "probe.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
