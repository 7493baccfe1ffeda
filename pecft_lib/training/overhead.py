"""What checkpoints of a resumable run cost: seconds per write, size on disk, seconds to load.

Run ``python -m pecft_lib.training.overhead`` (``--help`` for options). This is a measurement script, not a
test: it prints a Markdown table.

For each scale and method it runs :func:`~pecft_lib.training.run_resumable` over a small synthetic benchmark
(random images of the scale's shape, two experiences of two training iterations each) with a checkpoint after
every iteration and at the end of each experience, so a checkpoint holds the model grown to its second
experience and a populated Adam state. It also reports the frozen weights the checkpoints leave out
(:mod:`.frozen`), which a checkpoint of the whole ``state_dict`` would add to the size.

Paper scale is the ViT-B/16 architecture with random weights at 224 px (the cost does not depend on the
values), quick scale the offline ``pecft-vit-tiny`` at 28 px; the methods keep their paper settings (L2P's
pool of 10 prompts of length 5, InfLoRA's rank 10 on every block). The write time includes the fsync, so it
depends on the disk of ``--out``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..backbones import Backbone, ViTBackbone, load_backbone
from ..backbones.checkpoints import create_paper_vit
from ..benchmarks import ContinualBenchmark
from ..benchmarks.base import TensorClassificationDataset, make_class_incremental
from ..methods.coda_prompt import CodaPromptConfig, CodaPromptModel, CodaPromptOptimConfig, build_coda_prompt
from ..methods.inflora import InfLoRAConfig, InfLoRAModel, InfLoRAOptimConfig, build_inflora
from ..methods.l2p import L2PConfig, L2PModel, L2POptimConfig, build_l2p
from ..repro import seed_everything
from .checkpoint import load_checkpoint
from .resume import RunFiles, run_resumable

SCALES: dict[str, tuple[Callable[[], Backbone], tuple[int, int, int]]] = {
    "paper": (lambda: ViTBackbone(create_paper_vit("vit_base_patch16_224.augreg_in21k", pretrained=False)),
              (3, 224, 224)),
    "quick": (lambda: load_backbone("pecft-vit-tiny"), (1, 28, 28)),
}
CLASSES, EXPERIENCES, BATCH = 4, 2, 2


def _benchmark(shape: tuple[int, int, int]) -> ContinualBenchmark:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(BATCH)  # one batch per class: 2 iterations per experience
    data = TensorClassificationDataset(torch.randn(len(labels), *shape, generator=generator), labels)
    return make_class_incremental("synthetic", data, data, n_experiences=EXPERIENCES, class_order=list(range(CLASSES)),
                                  class_names=[str(c) for c in range(CLASSES)], info={"synthetic": True})


def _l2p(backbone: Backbone) -> Any:
    optim = L2POptimConfig(batch_size=BATCH, epochs=1, eval_batch_size=2 * BATCH)
    return build_l2p(L2PModel(backbone, CLASSES, L2PConfig()), optim, EXPERIENCES)


def _inflora(backbone: Backbone) -> Any:
    optim = InfLoRAOptimConfig(batch_size=BATCH, epochs=1, eval_batch_size=2 * BATCH)
    return build_inflora(InfLoRAModel(backbone, CLASSES, InfLoRAConfig()), optim, EXPERIENCES)


def _coda_prompt(backbone: Backbone) -> Any:
    model = CodaPromptModel(backbone, CLASSES, EXPERIENCES, CodaPromptConfig(n_components=100))
    optim = CodaPromptOptimConfig(batch_size=BATCH, epochs=1, eval_batch_size=2 * BATCH)
    return build_coda_prompt(model, optim, EXPERIENCES)


METHODS = {"L2P": _l2p, "InfLoRA": _inflora, "CODA-Prompt": _coda_prompt}


@dataclass
class OverheadRow:
    scale: str
    method: str
    model_values: int
    frozen_mib: float
    checkpoints: int
    mib: float
    write_seconds: float
    load_seconds: float


def measure(scale: str, method: str, out_dir: Path) -> OverheadRow:
    """Run ``method`` at ``scale`` with a checkpoint after every iteration in ``out_dir``; time and size them."""
    backbone_factory, shape = SCALES[scale]
    benchmark = _benchmark(shape)

    built = []

    def build():
        seed_everything(0)
        built.append(METHODS[method](backbone_factory()))
        return built[-1], benchmark, {"scale": scale, "method": method}

    record = run_resumable(build, out_dir, name=method, checkpoint_every=1)
    stats = record.extra["checkpoints"]
    path = RunFiles(out_dir).checkpoint
    start = time.perf_counter()
    checkpoint = load_checkpoint(path)
    load_seconds = time.perf_counter() - start
    state = built[-1].model.state_dict()
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    frozen_bytes = sum(tensors[key].numel() * tensors[key].element_size() for key in checkpoint["frozen"])
    return OverheadRow(scale, method, sum(value.numel() for value in tensors.values()), frozen_bytes / 2**20,
                       stats["written"], stats["bytes"] / 2**20, stats["seconds"] / stats["written"], load_seconds)


def markdown(rows: list[OverheadRow]) -> str:
    lines = ["| scale | method | model (M values) | frozen, left out (MiB) | checkpoints | size (MiB) | write (s) "
             "| load (s) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.scale} | {r.method} | {r.model_values / 1e6:.2f} | {r.frozen_mib:.1f} | {r.checkpoints} | "
              f"{r.mib:.2f} | {r.write_seconds:.3f} | {r.load_seconds:.3f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", nargs="+", choices=list(SCALES), default=["quick", "paper"])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["L2P", "InfLoRA"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the runs' checkpoints (default: a temporary folder, deleted afterwards)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        for scale in args.scales:
            for method in args.methods:
                rows.append(measure(scale, method, Path(tmp) / f"{scale}-{method}"))
                print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
