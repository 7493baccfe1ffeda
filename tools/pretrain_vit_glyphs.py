"""Pretrain ``pecft-vit-glyphs``: the ``pecft-vit-tiny`` architecture trained to name ~1,700 glyphs of non-Latin
scripts rendered from Debian's Noto fonts — data disjoint from every continual stream of the library.

No stream's classes are in it: no Latin letter, no digit of any script (Unicode category Nd), no symbol, and a
listed set of glyphs that look like Latin capitals A–J or digits (:data:`LOOKALIKES`) is left out. Only letters
(category Lo) of the scripts in :data:`SCRIPTS` are used, a seeded sample where a script has more than its cap.

Data: for every class, ``--variants`` images rendered by the ``"pretraining"`` pipeline of ``tools/glyphs.py``
(random font face among those that cover the glyph, stroke, rotation and size), then, at every step, a random
affine transform of the batch (scale, rotation, shear, shift). Training: supervised cross-entropy with label
smoothing 0.1 over the glyph classes, AdamW, linear warm-up then cosine decay. The head is dropped afterwards.
The run saves its state every 250 steps and resumes from it when started again with the same ``--out``.

Needs the fonts: ``apt-get install fonts-noto-core fonts-noto-cjk`` (Debian 12: 20201225-1 and
1:20220127+repack1-1).

    python tools/pretrain_vit_glyphs.py --out pecft_lib/data/pecft-vit-glyphs
    python tools/probe_backbones.py            # then the probe table of the model card
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from glyphs import covered_codepoints, font_files, render  # noqa: E402

from pecft_lib.atomic import atomic_write  # noqa: E402
from pecft_lib.backbones.vit_tiny import ARCHITECTURE, create_vit_tiny  # noqa: E402
from pecft_lib.benchmarks.grey28 import MEAN, STD  # noqa: E402
from pecft_lib.checksums import sha256_of  # noqa: E402
from pecft_lib.repro import seed_everything  # noqa: E402

NOTO_TTF = Path("/usr/share/fonts/truetype/noto")
NOTO_OTF = Path("/usr/share/fonts/opentype/noto")
CJK = ("NotoSansCJK", "NotoSerifCJK")

# script: (code point ranges, font file prefixes, at most this many classes)
SCRIPTS: dict[str, tuple[list[tuple[int, int]], tuple[str, ...], int]] = {
    "han": ([(0x4E00, 0x9FFF)], CJK, 450),
    "hangul": ([(0xAC00, 0xD7A3)], CJK, 200),
    "kana": ([(0x3041, 0x3096), (0x30A1, 0x30FA)], CJK, 200),
    "devanagari": ([(0x0900, 0x097F)], ("NotoSansDevanagari", "NotoSerifDevanagari"), 60),
    "bengali": ([(0x0980, 0x09FF)], ("NotoSansBengali", "NotoSerifBengali"), 60),
    "gurmukhi": ([(0x0A00, 0x0A7F)], ("NotoSansGurmukhi", "NotoSerifGurmukhi"), 60),
    "gujarati": ([(0x0A80, 0x0AFF)], ("NotoSansGujarati", "NotoSerifGujarati"), 60),
    "oriya": ([(0x0B00, 0x0B7F)], ("NotoSansOriya",), 60),
    "tamil": ([(0x0B80, 0x0BFF)], ("NotoSansTamil", "NotoSerifTamil"), 60),
    "telugu": ([(0x0C00, 0x0C7F)], ("NotoSansTelugu", "NotoSerifTelugu"), 60),
    "kannada": ([(0x0C80, 0x0CFF)], ("NotoSansKannada", "NotoSerifKannada"), 60),
    "malayalam": ([(0x0D00, 0x0D7F)], ("NotoSansMalayalam", "NotoSerifMalayalam"), 60),
    "sinhala": ([(0x0D80, 0x0DFF)], ("NotoSansSinhala", "NotoSerifSinhala"), 60),
    "thai": ([(0x0E00, 0x0E7F)], ("NotoSansThai", "NotoSerifThai", "NotoLoopedThai"), 60),
    "lao": ([(0x0E80, 0x0EFF)], ("NotoSansLao", "NotoSerifLao", "NotoLoopedLao"), 60),
    "tibetan": ([(0x0F00, 0x0FFF)], ("NotoSerifTibetan",), 60),
    "myanmar": ([(0x1000, 0x109F)], ("NotoSansMyanmar", "NotoSerifMyanmar"), 60),
    "ethiopic": ([(0x1200, 0x137F)], ("NotoSansEthiopic", "NotoSerifEthiopic"), 120),
    "khmer": ([(0x1780, 0x17FF)], ("NotoSansKhmer", "NotoSerifKhmer"), 60),
    "hebrew": ([(0x05D0, 0x05EA)], ("NotoSansHebrew", "NotoSerifHebrew", "NotoRashiHebrew"), 60),
    "arabic": ([(0x0620, 0x064A)], ("NotoSansArabic", "NotoNaskhArabic", "NotoKufiArabic"), 60),
    "canadian_syllabics": ([(0x1401, 0x166C)], ("NotoSansCanadianAboriginal",), 60),
    "yi": ([(0xA000, 0xA48C)], ("NotoSansYi",), 60),
}

# Glyphs that look like a Latin capital A–J, a digit or a plain stroke or box: left out (a judgement call,
# stated in the model card). Hebrew vav/final nun and Arabic alef look like I or 1; the rest are strokes,
# boxes, crosses and hooks that a stream's letters or digits could be mistaken for.
LOOKALIKES = set(
    "一二三十工口日曰丁七乙丨人入八儿几卜厂冂凵匚丄丅上下土士干千"
    "エニロトノコヘハヒレフクタ"
    "しくへつこいりんひて"
    "וןוׂ"
    "اأإآٱى"
    "ᐃᐅᐊᐁᐯᑌᑎᑕᑭᑯᑲᒋᒥᒪᓀᓂᓄᓇᓐ"
)


def glyph_classes(seed: int) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """(script, character, font faces that cover it) of every pretraining class: letters (Lo) of each script
    covered by at least one of its fonts, minus :data:`LOOKALIKES`, a seeded sample where over the cap."""
    import unicodedata

    rng = np.random.default_rng(seed)
    classes = []
    for script, (ranges, prefixes, cap) in SCRIPTS.items():
        faces = font_files(NOTO_OTF if prefixes == CJK else NOTO_TTF, prefixes)
        if not faces:
            raise SystemExit(f"no font for {script} ({', '.join(prefixes)}); install them with "
                             "`apt-get install fonts-noto-core fonts-noto-cjk`")
        chars = []
        for low, high in ranges:
            for cp in range(low, high + 1):
                char = chr(cp)
                if unicodedata.category(char) != "Lo" or char in LOOKALIKES:
                    continue
                covering = [f for f in faces if cp in covered_codepoints(*f)]
                if covering:
                    chars.append((char, covering))
        if len(chars) > cap:
            chars = [chars[i] for i in sorted(rng.choice(len(chars), cap, replace=False))]
        classes += [(script, char, covering) for char, covering in chars]
    return classes


def render_dataset(classes, variants: int, seed: int) -> torch.Tensor:
    """``uint8 [classes, variants, 28, 28]``: each class drawn ``variants`` times with random fonts and looks."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(classes), variants, 28, 28), dtype=np.uint8)
    for c, (_, char, faces) in enumerate(tqdm(classes, desc="rendering", unit="class")):
        v = 0
        while v < variants:
            image = render(char, *faces[int(rng.integers(len(faces)))], pipeline="pretraining", rng=rng)
            if image is not None:
                images[c, v] = image
                v += 1
    return torch.from_numpy(images)


def random_affine(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image under its own random affine map: scale 0.85–1.15, rotation ±10°, shear ±0.15, shift ±2 px;
    the background (the normalised value of black) fills what comes in from outside."""
    n = len(batch)
    u = lambda low, high: low + (high - low) * torch.rand(n, generator=generator)  # noqa: E731
    scale, angle, shear = u(0.85, 1.15), u(-10, 10) * math.pi / 180, u(-0.15, 0.15)
    shift = u(-2, 2), u(-2, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear, shift[0] * 2 / 28], 1),
        torch.stack([sin, cos, shift[1] * 2 / 28], 1),
    ], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = (0.0 - MEAN) / STD
    return F.grid_sample(batch - background, grid, align_corners=False, padding_mode="zeros") + background


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only (not on biases, norms, position embedding or [CLS])."""
    decay = lambda n, p: p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n  # noqa: E731
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if decay(n, p)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if not decay(n, p)], "weight_decay": 0.0},
    ]


def add_arguments(parser: argparse.ArgumentParser, out: str, steps: int, lr: float) -> None:
    """The recipe's options, shared by the glyph pretraining scripts (defaults ``out``, ``steps``, ``lr``)."""
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--variants", type=int, default=32)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def glyph_data(args: argparse.Namespace) -> tuple[list, torch.Tensor, dict, float]:
    """(classes, rendered images, classes per script, rendering seconds) for the recipe ``args``."""
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    start = time.perf_counter()
    classes = glyph_classes(args.seed)
    per_script = {s: sum(1 for c in classes if c[0] == s) for s in SCRIPTS}
    print(f"{len(classes)} glyph classes: {per_script}", flush=True)
    images = render_dataset(classes, args.variants, args.seed)
    return classes, images, per_script, time.perf_counter() - start


def pretrain(model: torch.nn.Module, classes: list, images: torch.Tensor, args: argparse.Namespace,
             report: dict, auxiliary: torch.nn.Module | None = None) -> None:
    """Train ``model`` (whose head has one output per class) to name the glyphs, save its weights without the
    head to ``args.out`` with their sha256, ``pretraining.json`` (``report`` plus the run's measurements) and
    ``classes.txt``. Saves its state every 250 steps and resumes from it when started again.

    ``auxiliary``, if given, is a module whose ``loss()`` (of the model's last forward pass) is added to the
    cross-entropy; its parameters are trained along and dropped with the head."""
    args.out.mkdir(parents=True, exist_ok=True)
    state_file = args.out / "pretraining_state.pt"
    trained = torch.nn.ModuleDict({"model": model, **({"auxiliary": auxiliary} if auxiliary is not None else {})})
    optimizer = torch.optim.AdamW(parameter_groups(trained, args.weight_decay), lr=args.lr)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (args.steps - warmup))),
    )
    generator = torch.Generator().manual_seed(args.seed)
    step, losses, accuracies, train_seconds = 0, [], [], 0.0
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        trained.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, losses, accuracies, train_seconds = state["step"], state["losses"], state["accuracies"], state["seconds"]
        print(f"resuming at step {step}", flush=True)

    n_classes, n_variants = images.shape[:2]
    model.train()
    progress = tqdm(total=args.steps, initial=step, desc="pretraining", unit="step")
    segment_start = time.perf_counter()
    while step < args.steps:
        labels = torch.randint(n_classes, (args.batch_size,), generator=generator)
        variant = torch.randint(n_variants, (args.batch_size,), generator=generator)
        batch = (images[labels, variant].float().unsqueeze(1) / 255.0 - MEAN) / STD
        logits = model(random_affine(batch, generator))
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        if auxiliary is not None:
            loss = loss + auxiliary.loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        losses.append(loss.item())
        accuracies.append((logits.argmax(1) == labels).float().mean().item())
        progress.update()
        progress.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", acc=f"{np.mean(accuracies[-50:]):.2f}")
        if step % 250 == 0 or step == args.steps:
            train_seconds += time.perf_counter() - segment_start
            segment_start = time.perf_counter()
            state = {
                "model": trained.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "generator": generator.get_state(), "step": step, "losses": losses, "accuracies": accuracies,
                "seconds": train_seconds,
            }
            atomic_write(state_file, lambda handle: torch.save(state, handle))
    progress.close()

    model.reset_classifier(0)
    weights = args.out / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    digest = sha256_of(weights)
    (args.out / "model.safetensors.sha256").write_text(f"{digest}  model.safetensors\n")
    report = {
        **report,
        "recipe": {k: v for k, v in vars(args).items() if not isinstance(v, Path)},  # no local paths
        "classes": len(classes),
        "images_rendered": int(n_classes * n_variants),
        "training_minutes": round(train_seconds / 60, 2),
        "final_loss": float(np.mean(losses[-200:])),
        "final_train_accuracy": float(np.mean(accuracies[-200:])),
        "loss_curve": [round(float(np.mean(losses[i:i + 100])), 4) for i in range(0, len(losses), 100)],
        "torch": torch.__version__,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "sha256": digest,
    }
    (args.out / "pretraining.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "classes.txt").write_text("".join(f"{s}\tU+{ord(c):04X}\t{c}\n" for s, c, _ in classes))
    state_file.unlink()
    print(json.dumps({k: v for k, v in report.items() if k != "loss_curve"}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, "pecft_lib/data/pecft-vit-glyphs", steps=6000, lr=1e-3)
    args = parser.parse_args()
    classes, images, per_script, render_seconds = glyph_data(args)
    report = {"architecture": ARCHITECTURE, "classes_per_script": per_script,
              "render_minutes": round(render_seconds / 60, 2)}
    pretrain(create_vit_tiny(num_classes=len(classes)), classes, images, args, report)


if __name__ == "__main__":
    main()
