"""Training-step throughput and peak memory of every method, at paper scale and at quick scale.

Run ``python -m pecft_lib.bench`` (``--help`` for options). This is a measurement script, not a test: it
prints a Markdown table (the book's performance appendix shows one) and can write the rows as JSON.

A row measures one optimizer step — forward, loss (with the method's regulariser), backward, update —
of the method in its **second** experience, so that one frozen earlier branch/adapter is in the forward
pass as during real training. Paper scale is the ViT-B/16 architecture with random weights (the timing
does not depend on the values) at 224 px; quick scale is the offline ``pecft-vit-tiny`` on 28 px images.
InfLoRA's per-task subspace work (the covariance passes before and after a task and the SVDs) is
reported separately, per training sample and per task, since it is not part of a step.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes

from .backbones import ViTBackbone, load_backbone
from .backbones.checkpoints import create_paper_vit
from .evaluation.resources import PeakMemory, count_trainable_parameters, hardware, package_versions
from .methods.inflora import InfLoRAConfig, InfLoRAModel, SubspaceMemory, design_down_projection
from .methods.coda_prompt import CodaPromptConfig, CodaPromptModel
from .methods.dualprompt import DualPromptConfig, DualPromptModel
from .methods.l2p import L2PConfig, L2PModel
from .methods.olora import OLoRAClassifier, OLoRAConfig, olora_penalties
from .methods.prompting import PromptClassifier
from .repro import seed_everything

SCALES = {
    # scale: (backbone factory, image shape, classes per experience, classes in all)
    "paper": (lambda: ViTBackbone(create_paper_vit("vit_base_patch16_224.augreg_in21k", pretrained=False)),
              (3, 224, 224), 10, 100),
    "quick": (lambda: load_backbone("pecft-vit-tiny"), (1, 28, 28), 2, 10),
}


@dataclass
class BenchRow:
    method: str
    scale: str
    device: str
    batch_size: int
    threads: int
    samples_per_second: float
    step_ms: float
    peak_memory_mib: float
    peak_memory_kind: str
    trainable_parameters: int
    query_cache: str = "–"
    """"on"/"off" for the prompt methods (q(x) precomputed or computed in the step), "–" for the others."""


def _second_experience(model, per_experience: int) -> None:
    model.begin_experience(range(per_experience))
    model.begin_experience(range(per_experience, 2 * per_experience))


def _inflora(backbone, per_experience: int, n_classes: int):
    model = InfLoRAModel(backbone, n_classes, InfLoRAConfig())
    _second_experience(model, per_experience)
    width = backbone.embed_dim
    for layer in model.layers:  # any orthonormal rows: the step's cost does not depend on them
        rows = torch.linalg.qr(torch.randn(width, model.config.rank))[0].T
        for branch in model.branches(layer):
            for down in branch.down:
                down.data.copy_(rows)
    return model, lambda logits, target: F.cross_entropy(logits, target)


def _olora(backbone, per_experience: int, n_classes: int):
    model = OLoRAClassifier(backbone, n_classes, OLoRAConfig())
    _second_experience(model, per_experience)

    def loss(logits, target):
        orthogonality, _ = olora_penalties(model.factors())
        return F.cross_entropy(logits, target) + model.lora.lambda_orth * orthogonality

    return model, loss


def _with_aux_loss(model: PromptClassifier):
    """The prompt methods' training loss: cross-entropy plus the model's auxiliary term (the key pull)."""
    return lambda logits, target: F.cross_entropy(logits, target) + model.aux_loss


def _l2p(backbone, per_experience: int, n_classes: int):
    model = L2PModel(backbone, n_classes, L2PConfig())
    _second_experience(model, per_experience)
    return model, _with_aux_loss(model)


def _dualprompt(backbone, per_experience: int, n_classes: int):
    model = DualPromptModel(backbone, n_classes, DualPromptConfig())
    _second_experience(model, per_experience)
    return model, _with_aux_loss(model)


def _coda_prompt(backbone, per_experience: int, n_classes: int):
    model = CodaPromptModel(backbone, n_classes, n_classes // per_experience, CodaPromptConfig())
    _second_experience(model, per_experience)
    return model, lambda logits, target: F.cross_entropy(logits, target)  # μ = 0: no auxiliary term


METHODS: dict[str, Callable] = {"InfLoRA": _inflora, "O-LoRA": _olora, "L2P": _l2p, "DualPrompt": _dualprompt,
                                "CODA-Prompt": _coda_prompt}
PROMPT_METHODS = ("L2P", "DualPrompt", "CODA-Prompt")
"""Methods with a prompt-free query, measured with the query cache off and on."""
GRAD_CLIP = {"L2P": 1.0, "DualPrompt": 1.0}
"""The reference recipes' global-norm gradient clipping, part of their step."""


def measure_step(method: str, scale: str, batch_size: int, steps: int, device: str, warmup: int = 2,
                 query_cache: bool = False) -> BenchRow:
    """Mean time of ``steps`` optimizer steps (after ``warmup``), and the peak memory while they run.

    For a prompt method, ``query_cache=True`` feeds q(x) computed once before the timing, as the strategy's
    query cache does from the second epoch on; ``False`` computes it in every step (the references)."""
    seed_everything(0)
    factory, shape, per_experience, n_classes = SCALES[scale]
    model, loss_fn = METHODS[method](factory(), per_experience, n_classes)
    model.to(device).train()
    prompted = isinstance(model, PromptClassifier)
    if query_cache and not prompted:
        raise ValueError(f"{method} has no prompt-free query to cache")
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-4)
    clip = GRAD_CLIP.get(method)
    inputs = torch.rand(batch_size, *shape, device=device)
    forward_arguments = {"query": model.query(inputs)} if query_cache else {}
    # targets of the current experience; logits of other classes masked as in training
    target = torch.randint(per_experience, 2 * per_experience, (batch_size,), device=device)
    mask = torch.full((n_classes,), float("-inf"), device=device)
    mask[per_experience:2 * per_experience] = 0.0

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(inputs, **forward_arguments) + mask, target).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        optimizer.step()

    for _ in range(warmup):
        step()
    with PeakMemory(device) as memory:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / steps
    return BenchRow(method, scale, device, batch_size, torch.get_num_threads(), batch_size / seconds,
                    1000 * seconds, round(memory.mib, 1), memory.kind, count_trainable_parameters(model),
                    ("on" if query_cache else "off") if prompted else "–")


def measure_inflora_subspace(scale: str, samples: int, batch_size: int, device: str) -> dict[str, float]:
    """InfLoRA's extra work per task: two covariance passes over the task's training data (seconds per
    1000 samples) and the SVDs of the design and the memory update (seconds per task, all blocks)."""
    seed_everything(0)
    factory, shape, per_experience, n_classes = SCALES[scale]
    model = InfLoRAModel(factory(), n_classes, InfLoRAConfig()).to(device)
    _second_experience(model, per_experience)
    batches = [torch.rand(batch_size, *shape, device=device) for _ in range(max(samples // batch_size, 1))]
    start = time.perf_counter()
    covariances = model.input_covariances(batches)
    covariance_seconds = time.perf_counter() - start
    start = time.perf_counter()
    memories = [SubspaceMemory.from_first_task(c, 0.95) for c in covariances]
    downs = [design_down_projection(c, m, model.config.rank) for c, m in zip(covariances, memories)]
    for memory, covariance in zip(memories, covariances):
        memory.update(covariance, 0.96)
    svd_seconds = time.perf_counter() - start
    assert len(downs) == len(model.layers)
    seen = len(batches) * batch_size
    return {"covariance_seconds_per_1000_samples": 1000 * covariance_seconds / seen,
            "svd_seconds_per_task": svd_seconds, "blocks": len(model.layers)}


def _measure_in_child(method: str, scale: str, batch_size: int, steps: int, device: str, threads: int,
                      query_cache: bool) -> BenchRow:
    torch.set_num_threads(threads)
    return measure_step(method, scale, batch_size, steps, device, query_cache=query_cache)


def markdown(rows: list[BenchRow]) -> str:
    lines = ["| method | scale | query cache | device | batch | threads | samples/s | step (ms) | peak memory (MiB) "
             "| trainable |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.method} | {row.scale} | {row.query_cache} | {row.device} | {row.batch_size} | "
                     f"{row.threads} | "
                     f"{row.samples_per_second:.2f} | {row.step_ms:.0f} | {row.peak_memory_mib:.0f} | "
                     f"{row.trainable_parameters:,} |")
    return "\n".join(lines)


@dataclass
class BenchResults:
    """What ``--json`` wrote: the rows, InfLoRA's per-task subspace work per scale, and where it ran
    (``versions`` and ``created_at`` are ``None`` in files written before the script recorded them)."""

    rows: list[BenchRow]
    inflora_subspace: dict[str, dict[str, float]]
    hardware: dict[str, object]
    versions: dict[str, str | None] | None = None
    created_at: str | None = None


def load_results(path: str | Path) -> BenchResults:
    """Read a file written by ``python -m pecft_lib.bench --json PATH``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {path}; write them with "
                                f"`python -m pecft_lib.bench --json {path}`")
    data = json.loads(path.read_text())
    return BenchResults(rows=[BenchRow(**row) for row in data["rows"]], inflora_subspace=data["inflora_subspace"],
                        hardware=data["hardware"], versions=data.get("versions"), created_at=data.get("created_at"))


def results_frame(rows: list[BenchRow]) -> pd.DataFrame:
    """The rows as a table indexed by (scale, method, query cache), in the order measured."""
    frame = pd.DataFrame([asdict(row) for row in rows])
    return frame.set_index(["scale", "method", "query_cache"])


def plot_throughput(rows: list[BenchRow], scale: str, ax: Axes | None = None) -> Axes:
    """Samples per second of every method at ``scale``, the prompt methods with the query cache off and on side
    by side."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.0, 3.4))[1]
    chosen = [row for row in rows if row.scale == scale]
    if not chosen:
        raise ValueError(f"no rows at scale {scale!r}; the rows have scales {sorted({r.scale for r in rows})}")
    methods = list(dict.fromkeys(row.method for row in chosen))
    width = 0.38
    styles = {"off": (-width / 2, "tab:blue", "query computed in every step"),
              "on": (width / 2, "tab:orange", "query cache on"),
              "–": (0.0, "tab:grey", "no query pass (LoRA methods)")}
    for cache, (offset, colour, label) in styles.items():
        bars = [(methods.index(row.method) + offset, row.samples_per_second) for row in chosen if row.query_cache == cache]
        if bars:
            ax.bar(*zip(*bars), width=width, color=colour, label=label)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("training samples / s")
    ax.set_title(f"{scale} scale, {chosen[0].device}, batch {chosen[0].batch_size}, {chosen[0].threads} threads")
    ax.legend(fontsize=8)
    return ax


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and hardware here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # one fresh process per row: the CPU peak-memory reading of a process never falls back after a large model
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for scale in args.scales:
        for method in args.methods:
            for query_cache in (False, True) if method in PROMPT_METHODS else (False,):
                with spawn.Pool(1) as pool:
                    rows.append(pool.apply(_measure_in_child, (method, scale, args.batch_size, args.steps,
                                                               args.device, torch.get_num_threads(), query_cache)))
    print(markdown(rows))
    subspace = {}
    if "InfLoRA" in args.methods:
        for scale in args.scales:
            subspace[scale] = measure_inflora_subspace(scale, 4 * args.batch_size, args.batch_size, args.device)
            print(f"InfLoRA subspace work ({scale}): {subspace[scale]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "inflora_subspace": subspace,
                                         "hardware": hardware(), "versions": package_versions(),
                                         "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                                        indent=1))


if __name__ == "__main__":
    main()
