"""bfloat16 against float32 for every method and baseline on the same input (a measurement, not a test).

    python tools/measure_bf16_fidelity.py [--out data/bench/bf16-fidelity.json] [--threads 1]

Two inputs at quick scale (``pecft-vit-tiny``, 28 px, every model in its second experience as the bench builds
it, seed 0): the fixed uniform-random batch of 8 images the unit tests use (``bench.fixed_inputs("quick", 8)``,
whose bounds in ``tests/test_precision.py`` come from this file) and the first 64 test images of the quick
vision stream (Split Fashion-MNIST, the ``l2p:vision`` preset's benchmark). Per model it reports the logit
differences, changed predictions and prompt selections, the loss difference and the gradient's relative error
(:class:`pecft_lib.bench.PrecisionFidelity`), with the CPU and its bfloat16-relevant flags.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from pecft_lib import bench
from pecft_lib.evaluation.resources import hardware, package_versions
from pecft_lib.experiments import resolve

TEST_BATCH = 8
STREAM_IMAGES = 64


def stream_images(count: int) -> torch.Tensor:
    """The first ``count`` test images of the quick vision stream's first experience."""
    benchmark = resolve("l2p:vision", "quick").config.benchmark.build()
    dataset = benchmark.test_stream[0].dataset
    return torch.stack([dataset[index][0] for index in range(count)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/bench/bf16-fidelity.json"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = {"fixed_random_8": bench.fixed_inputs("quick", TEST_BATCH),
              f"fashion_mnist_test_{STREAM_IMAGES}": stream_images(STREAM_IMAGES)}
    results = {name: [asdict(bench.measure_fidelity(method, batch)) for method in bench.FIDELITY_MODELS]
               for name, batch in inputs.items()}
    for name, rows in results.items():
        print(f"## {name}")
        print("| model | max abs logit diff | mean abs logit diff | mean abs logit | argmax changes | prompt-id changes "
              "| loss diff | grad rel. error |")
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['method']} | {row['logit_max_abs_diff']:.2e} | {row['logit_mean_abs_diff']:.2e} | "
                  f"{row['logit_mean_abs']:.3f} | {row['argmax_changes']}/{row['samples']} | "
                  f"{'–' if row['prompt_id_changes'] is None else row['prompt_id_changes']} | "
                  f"{'–' if row['loss_abs_diff'] is None else format(row['loss_abs_diff'], '.2e')} | "
                  f"{'–' if row['grad_relative_error'] is None else format(row['grad_relative_error'], '.2e')} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"inputs": results, "hardware": hardware(), "versions": package_versions(),
                                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                                   indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
