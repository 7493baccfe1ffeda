"""Pretrain ``pecft-vit-tiny`` offline, without any Fashion-MNIST label and without any test image.

Recipe (DeepCluster-style self-supervision, Caron et al. 2018, on the *unlabeled* training images):

1. Pseudo-labels: the 60,000 training images (normalised) are reduced to their first ``--pca`` principal
   components and clustered by k-means (k-means++ seeding, ``--clusters`` clusters, seeded).
2. The ViT (architecture in :mod:`pecft_lib.backbones.vit_tiny`) learns to predict the cluster of randomly
   shifted and flipped views: AdamW, linear warm-up then cosine decay, label smoothing.
3. ``--rounds`` > 1 re-clusters the images on the learned [CLS] features and trains on with a fresh head.

The Fashion-MNIST labels are read only afterwards, by the linear probe that measures the result
(train-set features → logistic regression → test-set accuracy), which the model card reports.

    python tools/pretrain_vit_tiny.py --out pecft_lib/data/pecft-vit-tiny
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from pecft_lib.checksums import sha256_of
from pecft_lib.backbones.vit_tiny import ARCHITECTURE, create_vit_tiny
from pecft_lib.benchmarks.fashion_mnist import load_fashion_mnist
from pecft_lib.benchmarks.split_fashion_mnist import MEAN, STD, normalise
from pecft_lib.evaluation.probe import extract_features, linear_probe
from pecft_lib.repro import seed_everything


def kmeans(points: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns the cluster index of every point."""
    n = len(points)
    centers = points[torch.randint(n, (1,), generator=generator)]
    closest = torch.cdist(points, centers).squeeze(1) ** 2
    for _ in range(1, k):
        pick = torch.multinomial(closest / closest.sum(), 1, generator=generator)
        centers = torch.cat([centers, points[pick]])
        closest = torch.minimum(closest, torch.cdist(points, points[pick]).squeeze(1) ** 2)
    for _ in range(iters):
        assign = torch.cdist(points, centers).argmin(1)
        for c in range(k):
            members = points[assign == c]
            if len(members):
                centers[c] = members.mean(0)
    return torch.cdist(points, centers).argmin(1)


def pseudo_labels(features: torch.Tensor, n_pca: int, k: int, seed: int) -> torch.Tensor:
    centred = features.flatten(1) - features.flatten(1).mean(0)
    _, _, v = torch.pca_lowrank(centred, q=n_pca, center=False, niter=4)
    reduced = centred @ v
    generator = torch.Generator().manual_seed(seed)
    return kmeans(reduced, k, iters=30, generator=generator)


def augment(batch: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (zero = background after padding) and horizontal flip."""
    background = (0.0 - MEAN) / STD
    padded = F.pad(batch, [max_shift] * 4, value=background)
    n, _, h, w = batch.shape
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    out = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def train_round(model, images, labels, k, epochs, batch_size, lr, weight_decay, seed) -> list[float]:
    model.reset_classifier(k)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    steps_per_epoch = len(images) // batch_size
    total = epochs * steps_per_epoch
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
    )
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    progress = tqdm(total=total, desc="pretraining", unit="step")
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(model(augment(images[index], generator)), labels[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
    progress.close()
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("pecft_lib/data/pecft-vit-tiny"))
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--pca", type=int, default=50)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--patch-size", type=int, default=ARCHITECTURE["patch_size"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=None, help="pilot runs: use only this many images")
    parser.add_argument("--probe-subset", type=int, default=None, help="pilot runs: probe on fewer images")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    data = load_fashion_mnist()
    images = normalise(data.train_images)  # labels are not read until the probe
    if args.train_subset:
        images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[: args.train_subset]]

    start, cpu_start = time.perf_counter(), time.process_time()
    model = create_vit_tiny(patch_size=args.patch_size)
    labels = pseudo_labels(images, args.pca, args.clusters, args.seed)
    cluster_seconds = time.perf_counter() - start
    print(f"k-means on PCA-{args.pca} pixels: {args.clusters} clusters in {cluster_seconds:.0f} s", flush=True)
    losses: list[float] = []
    epochs_per_round = args.epochs / args.rounds
    for round_index in range(args.rounds):
        if round_index:
            feats = extract_features(model, images, batch_size=512)
            labels = pseudo_labels(feats, min(args.pca, feats.shape[1]), args.clusters, args.seed + round_index)
        round_epochs = max(1, round(epochs_per_round)) if epochs_per_round >= 1 else epochs_per_round
        if round_epochs < 1:  # fractional epoch for pilot runs: shrink the data instead
            n = int(len(images) * round_epochs)
            losses += train_round(model, images[:n], labels[:n], args.clusters, 1, args.batch_size, args.lr,
                                  args.weight_decay, args.seed + round_index)
        else:
            losses += train_round(model, images, labels, args.clusters, int(round_epochs), args.batch_size, args.lr,
                                  args.weight_decay, args.seed + round_index)
    pretrain_seconds = time.perf_counter() - start
    pretrain_cpu_seconds = time.process_time() - cpu_start
    print(f"pretraining took {pretrain_seconds / 60:.1f} min", flush=True)

    model.reset_classifier(0)
    model.eval()
    probe_start = time.perf_counter()
    train_x, train_y = normalise(data.train_images), torch.from_numpy(data.train_labels)
    test_x, test_y = normalise(data.test_images), torch.from_numpy(data.test_labels)
    if args.probe_subset:
        train_x, train_y = train_x[: args.probe_subset], train_y[: args.probe_subset]
        test_x, test_y = test_x[: args.probe_subset // 5], test_y[: args.probe_subset // 5]
    probe = linear_probe(extract_features(model, train_x), train_y, extract_features(model, test_x), test_y)
    probe_seconds = time.perf_counter() - probe_start
    print(f"linear probe: test accuracy {probe['test_accuracy']:.2%} ({probe_seconds:.0f} s)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    digest = sha256_of(weights)
    (args.out / "model.safetensors.sha256").write_text(f"{digest}  model.safetensors\n")
    report = {
        "architecture": {**ARCHITECTURE, "patch_size": args.patch_size},
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pretraining_minutes": round(pretrain_seconds / 60, 2),
        # CPU time of all threads: on an otherwise idle machine the wall time is at least cpu / threads.
        "pretraining_cpu_minutes": round(pretrain_cpu_seconds / 60, 2),
        "kmeans_seconds": round(cluster_seconds, 1),
        "final_loss": sum(losses[-100:]) / len(losses[-100:]),
        "linear_probe": probe,
        "probe_seconds": round(probe_seconds, 1),
        "torch": torch.__version__,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "sha256": digest,
    }
    (args.out / "pretraining.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
