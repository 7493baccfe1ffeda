"""Training-step throughput and peak memory of every method, at paper scale and at quick scale.

Run ``python -m pecft_lib.bench`` (``--help`` for options). This is a measurement script, not a test: it
prints a Markdown table (the book's performance appendix shows one) and can write the rows as JSON.

A row measures one optimizer step — forward, loss (with the method's regulariser), backward, update —
of the method in its **second** experience, so that one frozen earlier branch/adapter is in the forward
pass as during real training. Paper scale is the ViT-B/16 architecture with random weights (the timing
does not depend on the values) at 224 px; quick scale is the offline ``pecft-vit-tiny`` on 28 px images.
InfLoRA's per-task subspace work (the covariance passes before and after a task and the SVDs) is
reported separately, per training sample and per task, since it is not part of a step.

``--precision fp32 bf16`` measures every row in both precisions in one run: ``bf16`` runs the step's forward
(and the query of the query cache) under bfloat16 autocast and the loss, backward and update as a
``precision: bf16`` training run does (:mod:`pecft_lib.methods.common.precision`). The CPU flags that decide
what bfloat16 gains on a CPU (AMX, AVX-512-BF16) are printed and stored with the hardware.
:func:`measure_fidelity` compares the two precisions on one input instead of timing them: logits, prompt
selection, loss and gradient of every method and baseline.
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
from .evaluation.resources import BF16_CPU_FLAGS, PeakMemory, count_trainable_parameters, hardware, package_versions
from .methods.common import PRECISIONS, autocast, upcast
from .methods.inflora import InfLoRAConfig, InfLoRAModel, SubspaceMemory, design_down_projection
from .methods.coda_prompt import CodaPromptConfig, CodaPromptModel
from .methods.dualprompt import DualPromptConfig, DualPromptModel
from .methods.l2p import L2PConfig, L2PModel
from .methods.baselines.prototype import PrototypeClassifier
from .methods.finetuning import PEFTClassifier, TuningConfig
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
    precision: str = "fp32"
    """"fp32" or "bf16" (autocast around the forward); files written before the option hold fp32 rows."""


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
                 query_cache: bool = False, precision: str = "fp32") -> BenchRow:
    """Mean time of ``steps`` optimizer steps (after ``warmup``), and the peak memory while they run.

    For a prompt method, ``query_cache=True`` feeds q(x) computed once before the timing, as the strategy's
    query cache does from the second epoch on; ``False`` computes it in every step (the references).
    ``precision="bf16"`` runs the forward passes under bfloat16 autocast, the loss on float32 logits."""
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
    device_type = torch.device(device).type
    with autocast(precision, device_type):
        forward_arguments = {"query": model.query(inputs)} if query_cache else {}
    # targets of the current experience; logits of other classes masked as in training
    target = torch.randint(per_experience, 2 * per_experience, (batch_size,), device=device)
    mask = torch.full((n_classes,), float("-inf"), device=device)
    mask[per_experience:2 * per_experience] = 0.0

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device_type):
            logits = model(inputs, **forward_arguments)
        loss_fn(upcast(logits) + mask, target).backward()
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
                    ("on" if query_cache else "off") if prompted else "–", precision)


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target)


def _tuned_baseline(tuning: TuningConfig) -> Callable:
    """A sequential baseline's model (:class:`PEFTClassifier`), which has no experience to begin."""
    return lambda backbone, per_experience, n_classes: (PEFTClassifier(backbone, n_classes, tuning), _cross_entropy)


def _prototype(backbone, per_experience: int, n_classes: int):
    """SimpleCIL without class means yet (:func:`measure_fidelity` adds them); it trains nothing, so has no loss."""
    return PrototypeClassifier(backbone, n_classes), None


FIDELITY_MODELS: dict[str, Callable] = {
    **METHODS,
    "SeqFT": _tuned_baseline(TuningConfig(method="full")),
    "SeqLoRA": _tuned_baseline(TuningConfig(method="lora", lora_rank=10, lora_alpha=10.0, lora_targets=["k", "v"])),
    "Prototype": _prototype,
}
"""The models :func:`measure_fidelity` compares: the five methods (as :data:`METHODS` builds them, in their second
experience) and the comparison's baselines (SeqFT, SeqLoRA with the medium comparison's rank, the prototype
classifier)."""


@dataclass
class PrecisionFidelity:
    """One model's outputs in ``precision`` against float32 on the same input (:func:`measure_fidelity`).

    Attributes:
        logit_max_abs_diff, logit_mean_abs_diff: over the finite logits of an evaluation-mode forward.
        logit_mean_abs: the mean absolute float32 logit, the scale the differences compare with.
        argmax_changes: samples whose predicted class differs.
        prompt_id_changes, prompts_per_sample: samples whose selected prompt ids (L2P's top-N, DualPrompt's
            E-prompt) differ, and the ids each sample selects; ``None`` for models without a discrete selection.
        loss_fp32, loss_abs_diff: the training loss (masked cross-entropy plus the method's term) of a
            training-mode forward; ``None`` for the prototype classifier, which has no loss.
        grad_relative_error: ``‖g − g_fp32‖ / ‖g_fp32‖`` over all trainable parameters (``None`` without loss).
    """

    method: str
    precision: str
    samples: int
    logit_max_abs_diff: float
    logit_mean_abs_diff: float
    logit_mean_abs: float
    argmax_changes: int
    prompt_id_changes: int | None
    prompts_per_sample: int | None
    loss_fp32: float | None
    loss_abs_diff: float | None
    grad_relative_error: float | None


def fixed_inputs(scale: str, batch_size: int, seed: int = 0) -> torch.Tensor:
    """Uniform random images of ``scale``'s shape from a generator seeded with ``seed``: the fixed input of the
    fidelity tests."""
    return torch.rand(batch_size, *SCALES[scale][1], generator=torch.Generator().manual_seed(seed))


def measure_fidelity(method: str, inputs: torch.Tensor, scale: str = "quick", precision: str = "bf16",
                     seed: int = 0) -> PrecisionFidelity:
    """Model ``method`` of :data:`FIDELITY_MODELS` (built once, seeded with ``seed``) on ``inputs`` in float32 and
    in ``precision`` on the CPU, as a training run in that precision computes it: logits (evaluation mode), prompt
    selection, and the loss and gradients of a training step whose targets are classes of the current experience.
    The prototype classifier's class means are those of ``inputs`` and the targets, computed in float32 as its
    training pass does."""
    seed_everything(seed)
    factory, _, per_experience, n_classes = SCALES[scale]
    model, loss_fn = FIDELITY_MODELS[method](factory(), per_experience, n_classes)
    target = torch.randint(per_experience, 2 * per_experience, (len(inputs),),
                           generator=torch.Generator().manual_seed(seed))
    mask = torch.full((n_classes,), float("-inf"))
    mask[per_experience:2 * per_experience] = 0.0
    trainable = [p for p in model.parameters() if p.requires_grad]
    if isinstance(model, PrototypeClassifier):
        model.add_examples(inputs, target)

    def run(chosen: str) -> tuple[torch.Tensor, torch.Tensor | None, float | None, torch.Tensor | None]:
        model.eval()
        with torch.no_grad(), autocast(chosen, "cpu"):
            logits = upcast(model(inputs))
            ids = model.prompt_ids(inputs) if hasattr(model, "prompt_ids") else None
        if loss_fn is None:
            return logits, ids, None, None
        model.train()
        torch.manual_seed(seed)  # the same dropout draws (O-LoRA) in both precisions
        model.zero_grad(set_to_none=True)
        with autocast(chosen, "cpu"):
            train_logits = model(inputs)
        loss = loss_fn(upcast(train_logits) + mask, target)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in trainable if p.grad is not None])
        return logits, ids, loss.item(), grads

    reference, reference_ids, reference_loss, reference_grads = run("fp32")
    logits, ids, loss, grads = run(precision)
    finite = torch.isfinite(reference)
    if not torch.equal(finite, torch.isfinite(logits)):
        raise RuntimeError(f"{method}: {precision} and fp32 disagree on which logits are finite")
    difference = (logits - reference)[finite].abs()
    return PrecisionFidelity(
        method, precision, len(inputs), difference.max().item(), difference.mean().item(),
        reference[finite].abs().mean().item(), int((logits.argmax(1) != reference.argmax(1)).sum()),
        None if ids is None else int((ids != reference_ids).any(1).sum()),
        None if ids is None else ids.shape[1],
        reference_loss, None if loss is None else abs(loss - reference_loss),
        None if grads is None else ((grads - reference_grads).norm() / reference_grads.norm()).item(),
    )


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
                      query_cache: bool, precision: str) -> BenchRow:
    torch.set_num_threads(threads)
    return measure_step(method, scale, batch_size, steps, device, query_cache=query_cache, precision=precision)


def markdown(rows: list[BenchRow]) -> str:
    lines = ["| method | scale | query cache | precision | device | batch | threads | samples/s | step (ms) "
             "| peak memory (MiB) | trainable |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.method} | {row.scale} | {row.query_cache} | {row.precision} | {row.device} | "
                     f"{row.batch_size} | {row.threads} | "
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
    """The rows as a table indexed by (scale, method, query cache, precision), in the order measured."""
    frame = pd.DataFrame([asdict(row) for row in rows])
    return frame.set_index(["scale", "method", "query_cache", "precision"])


def plot_throughput(rows: list[BenchRow], scale: str, ax: Axes | None = None, precision: str = "fp32") -> Axes:
    """Samples per second of every method at ``scale`` in ``precision``, the prompt methods with the query cache
    off and on side by side."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.0, 3.4))[1]
    chosen = [row for row in rows if row.scale == scale and row.precision == precision]
    if not chosen:
        raise ValueError(f"no {precision} rows at scale {scale!r}; the rows have scales and precisions "
                         f"{sorted({(r.scale, r.precision) for r in rows})}")
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
    ax.set_title(f"{scale} scale, {precision}, {chosen[0].device}, batch {chosen[0].batch_size}, "
                 f"{chosen[0].threads} threads")
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
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=PRECISIONS,
                        help="measure every row in each of these precisions (bf16: autocast around the forward)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and hardware here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # one fresh process per row: the CPU peak-memory reading of a process never falls back after a large model
    spawn = multiprocessing.get_context("spawn")
    machine = hardware()
    print(f"CPU: {machine['cpu']}; bfloat16-relevant flags: {', '.join(machine['cpu_flags']) or 'none'} "
          f"(of {', '.join(BF16_CPU_FLAGS)})")
    rows = []
    for scale in args.scales:
        for method in args.methods:
            for query_cache in (False, True) if method in PROMPT_METHODS else (False,):
                for precision in args.precision:
                    with spawn.Pool(1) as pool:
                        rows.append(pool.apply(_measure_in_child, (method, scale, args.batch_size, args.steps,
                                                                   args.device, torch.get_num_threads(), query_cache,
                                                                   precision)))
    print(markdown(rows))
    subspace = {}
    if "InfLoRA" in args.methods:
        for scale in args.scales:
            subspace[scale] = measure_inflora_subspace(scale, 4 * args.batch_size, args.batch_size, args.device)
            print(f"InfLoRA subspace work ({scale}): {subspace[scale]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "inflora_subspace": subspace,
                                         "hardware": machine, "versions": package_versions(),
                                         "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                                        indent=1))


if __name__ == "__main__":
    main()
