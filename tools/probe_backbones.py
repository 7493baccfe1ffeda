"""Linear probes of a shipped 28×28 backbone on every grey-image stream, written next to its weights.

For each stream (and each domain of ``five_domains``), the same probe (standardised features → multinomial
logistic regression by L-BFGS → top-1 on the stream's whole test split, :func:`pecft_lib.evaluation.probe.linear_probe`)
is fitted on ``--per-class`` training examples per class (drawn with seed 0; default 100, the medium profile's
budget: what the continual methods train on) → ``probe.json``, or on the whole training split (``--per-class 0``)
→ ``probe_full.json``. It is applied to

* ``frozen``: the backbone's shipped weights ([CLS] after the final norm, 192 values),
* ``random_init``: the same architecture with random weights (seed 0; for the hybrid, its stem too),
* ``raw_pixels``: the 784 normalised pixels.

Output: ``{"<stream>": {"frozen": acc, "raw_pixels": acc, "random_init": acc}, ...}`` with accuracies in [0, 1].

    python tools/probe_backbones.py pecft-hybrid-glyphs                  # probe.json (100 per class)
    python tools/probe_backbones.py pecft-hybrid-glyphs --per-class 0    # probe_full.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pecft_lib.backbones.hybrid_glyphs import create_hybrid_glyphs, load_hybrid_glyphs
from pecft_lib.backbones.vit_glyphs import load_vit_glyphs
from pecft_lib.backbones.vit_tiny import create_vit_tiny, load_vit_tiny
from pecft_lib.benchmarks.fashion_mnist import load_fashion_mnist
from pecft_lib.benchmarks.base import per_class_subset
from pecft_lib.benchmarks.grey28 import normalise
from pecft_lib.benchmarks.grey28_streams import DOMAINS, load_stream_file
from pecft_lib.evaluation.probe import extract_features, linear_probe
from pecft_lib.paths import package_data

# backbone: (shipped weights, the same architecture at random init)
LOADERS = {
    "pecft-vit-glyphs": (load_vit_glyphs, create_vit_tiny),
    "pecft-hybrid-glyphs": (load_hybrid_glyphs, create_hybrid_glyphs),
    "pecft-vit-tiny": (load_vit_tiny, create_vit_tiny),
}


def domain(name: str) -> dict[str, np.ndarray]:
    if name == "fashion_mnist":
        data = load_fashion_mnist()
        return {"train_images": data.train_images, "train_labels": data.train_labels,
                "test_images": data.test_images, "test_labels": data.test_labels}
    return load_stream_file(name)


def streams() -> dict[str, dict[str, np.ndarray]]:
    """Every stream's whole train and test split as arrays; ``five_domains`` labels offset by 10 per domain."""
    parts = {d: domain(d) for d in DOMAINS}
    out = {"split_fashion_mnist": parts["fashion_mnist"], "split_mnist": parts["mnist"]}
    out["five_domains"] = {
        key: np.concatenate([parts[d][key] + (10 * t if "labels" in key else 0) for t, d in enumerate(DOMAINS)])
        for key in ("train_images", "train_labels", "test_images", "test_labels")
    }
    out.update({f"five_domains/{d}": parts[d] for d in ("letters", "symbols", "digits8")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbone", choices=sorted(LOADERS))
    parser.add_argument("--out", help="default: the backbone's probe.json in the package (not for pecft-vit-tiny, "
                        "whose probe.json is written by tools/probe_vit_tiny.py)")
    parser.add_argument("--per-class", type=int, default=100, help="training examples per class (0: all)")
    parser.add_argument("--streams", nargs="+", help="re-probe only these streams and keep the other rows of the "
                        "existing file (after a change of those streams' data)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.out is None and args.backbone == "pecft-vit-tiny":
        parser.error(f"{args.backbone}'s probe.json has another format; pass --out FILE")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load, create = LOADERS[args.backbone]
    models = {"frozen": load(), "random_init": create()}
    out = Path(args.out) if args.out else package_data(args.backbone) / ("probe.json" if args.per_class else "probe_full.json")
    results = json.loads(out.read_text()) if args.streams and out.is_file() else {}
    for name, data in streams().items():
        if args.streams and name not in args.streams:
            continue
        start = time.perf_counter()
        keep = per_class_subset(data["train_labels"], args.per_class or None, 0)
        x_train, x_test = normalise(data["train_images"][keep]), normalise(data["test_images"])
        y_train = torch.from_numpy(data["train_labels"][keep]).long()
        y_test = torch.from_numpy(data["test_labels"]).long()
        row = {kind: linear_probe(extract_features(model, x_train), y_train,
                                  extract_features(model, x_test), y_test)["test_accuracy"]
               for kind, model in models.items()}
        row["raw_pixels"] = linear_probe(x_train.flatten(1), y_train, x_test.flatten(1), y_test)["test_accuracy"]
        results[name] = {k: round(row[k], 4) for k in ("frozen", "raw_pixels", "random_init")}
        print(f"{name}: {results[name]} ({len(x_train)} train, {len(x_test)} test, "
              f"{time.perf_counter() - start:.0f} s)", flush=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| stream | frozen | raw pixels | random init |\n|---|---|---|---|")  # the model card's table
    for name, row in results.items():
        print(f"| `{name}` | {100 * row['frozen']:.1f} | {100 * row['raw_pixels']:.1f} | {100 * row['random_init']:.1f} |")


if __name__ == "__main__":
    main()
