"""Draw the book's explanatory figures: one map of the book and one figure per method.

Every figure is drawn here with matplotlib patches, arrows and text and written as ``book/figures/<name>.svg``:

* ``book_map.svg`` — a transformer encoder (input → embedding → blocks 1..L → [CLS] → head) and where each
  method of the book acts on it (L2P, DualPrompt, CODA-Prompt, InfLoRA, O-LoRA);
* ``l2p.svg`` — L2P: query pass, key match against the prompt pool, prompted pass;
* ``dualprompt.svg`` — DualPrompt: shared G-prompt and per-task E-prompts as key/value prefixes;
* ``coda_prompt.svg`` — CODA-Prompt: the prompt as a weighted sum of components, weights from the query;
* ``inflora.svg`` — InfLoRA: the low-rank branch on a frozen projection and the geometry of its designed ``down``;
* ``olora.svg`` — O-LoRA: per-task LoRA adapters kept orthogonal, against IncLoRA.

``book/figures/CAPTIONS.md`` holds the caption and the MyST snippet of each figure.

Regenerate all figures after changing this script (``tests/test_figures.py`` fails until they match)::

    python tools/draw_figures.py                 # writes book/figures/*.svg
    python tools/draw_figures.py --out DIR       # writes DIR/*.svg instead
    python tools/draw_figures.py --png DIR       # also writes DIR/*.png previews (not committed)

The SVG files are deterministic: a fixed ``svg.hashsalt``, no date in the metadata, text drawn as paths
(so they look the same without the fonts installed); the same matplotlib version gives the same bytes.

Colours: grey = frozen (pretrained); orange = trained and shared by all tasks (prompt pools, G-prompt, head);
one colour per task 1..T (solid = trained now, pale = an earlier task's part, frozen); in the map, one
colour per method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent.parent / "book" / "figures"

INK = "#222222"
FROZEN = "#dcdcdc"          # frozen pretrained parts
FROZEN_EDGE = "#7a7a7a"
SHARED = "#E69F00"          # trained, shared by all tasks
TASK = ("#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")  # task 1..5 (Okabe–Ito)
METHOD = {"L2P": TASK[0], "DualPrompt": TASK[1], "CODA-Prompt": TASK[2], "InfLoRA": TASK[3], "O-LoRA": TASK[4]}
FONT = 10                   # body text, points
SMALL = 9                   # the smallest text of any figure


def _setup() -> None:
    matplotlib.rcParams.update({
        "svg.hashsalt": "pecft",
        "svg.fonttype": "path",
        "font.family": "DejaVu Sans",
        "mathtext.fontset": "dejavusans",
        "font.size": FONT,
        "text.color": INK,
    })


def _tint(color: str, amount: float = 0.6) -> str:
    """``color`` mixed with white: the pale version of a task colour (an earlier task's part, frozen)."""
    r, g, b = to_rgb(color)
    return to_hex((r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount))


def _canvas(width: float, height: float):
    """A figure whose data coordinates are inches, origin at the bottom left."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, text="", face=FROZEN, edge=FROZEN_EDGE, size=FONT, color=INK, lw=1.0, ls="-",
         weight="normal", rounding=0.05, z=2, hatch=None):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad=0,rounding_size={rounding}", fc=face, ec=edge,
                                lw=lw, ls=ls, zorder=z, hatch=hatch))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, color=color,
                weight=weight, zorder=z + 1, linespacing=1.25)


def _arrow(ax, start, end, color=INK, lw=1.2, ls="-", rad=0.0, z=1, head=True):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>,head_length=0.5,head_width=0.25" if head else "-",
                                 mutation_scale=12, color=color, lw=lw, ls=ls, shrinkA=0, shrinkB=0, zorder=z,
                                 connectionstyle=f"arc3,rad={rad}"))


def _text(ax, x, y, s, size=FONT, ha="center", va="center", color=INK, **kw):
    ax.text(x, y, s, fontsize=size, ha=ha, va=va, color=color, linespacing=1.25, **kw)


def _legend(ax, x, y, items, gap=0.25):
    """``items``: (face, edge, label); swatches in one row from (x, y)."""
    for face, edge, label in items:
        ax.add_patch(Rectangle((x, y - 0.07), 0.22, 0.14, fc=face, ec=edge, lw=1.0))
        ax.text(x + 0.3, y, label, fontsize=SMALL, va="center", ha="left")
        x += 0.3 + 0.067 * len(label) + gap


def _panel_label(ax, x, y, s):
    _text(ax, x, y, s, size=FONT + 1, ha="left", weight="bold")


def _chips(ax, x, y, labels, faces, w=0.36, h=0.3, gap=0.04, size=SMALL, colors=None, edges=None):
    """A row of token chips from (x, y); returns the centre x of each."""
    centres = []
    for i, (label, face) in enumerate(zip(labels, faces)):
        edge = edges[i] if edges else FROZEN_EDGE
        color = colors[i] if colors else INK
        _box(ax, x, y, w, h, label, face=face, edge=edge, size=size, color=color, rounding=0.03)
        centres.append(x + w / 2)
        x += w + gap
    return centres


def _encoder(ax, x, y, w, h, label="frozen pretrained ViT", size=FONT):
    _box(ax, x, y, w, h, label, face=FROZEN, edge=FROZEN_EDGE, size=size)


# --------------------------------------------------------------------------------------------------------------
# The map of the book


def book_map():
    """Map of the book: a frozen transformer encoder and where each method acts on it (one column per method)."""
    fig, ax = _canvas(8.6, 6.3)
    row_h, pitch = 0.44, 0.53
    rows = ["input", "tokens", "1", "2", "3", "4", "5", "dots", "L", "head"]
    y_of = {name: 0.25 + i * pitch for i, name in enumerate(rows)}
    x0, stack_w = 0.2, 2.85

    # Encoder stack (left).
    _box(ax, x0, y_of["input"], stack_w, row_h, "input x  →  patch / token embedding")
    _chips(ax, x0 + 0.05, y_of["tokens"] + 0.05, ["[CLS]", "P", "P", "P", "$x_1$", "$x_2$", "…", "$x_n$"],
           [FROZEN, METHOD["L2P"], METHOD["L2P"], METHOD["L2P"], FROZEN, FROZEN, "white", FROZEN],
           w=0.31, h=0.34, gap=0.045, colors=[INK, "white", "white", "white", INK, INK, INK, INK],
           edges=[FROZEN_EDGE] * 6 + ["white", FROZEN_EDGE])
    for name in ("1", "2", "3", "4", "5", "L"):
        y = y_of[name]
        _box(ax, x0, y, stack_w, row_h, "", face="white", edge=FROZEN_EDGE)
        _text(ax, x0 + 0.32, y + row_h / 2, f"block {name}", size=SMALL)
        _box(ax, x0 + 0.68, y + 0.06, 1.35, row_h - 0.12, "", face=FROZEN, rounding=0.03)
        _text(ax, x0 + 0.93, y + row_h / 2, "attn", size=SMALL)
        _chips(ax, x0 + 1.22, y + 0.1, ["q", "k", "v"], [FROZEN] * 3, w=0.22, h=row_h - 0.2, gap=0.04,
               edges=[INK] * 3)
        _box(ax, x0 + 2.12, y + 0.06, 0.66, row_h - 0.12, "MLP", size=SMALL, rounding=0.03)
    _text(ax, x0 + stack_w / 2, y_of["dots"] + row_h / 2, "⋮   blocks 6 … L−1", size=SMALL)
    _box(ax, x0, y_of["head"], 1.3, row_h, "[CLS] output", size=SMALL)
    _box(ax, x0 + 1.55, y_of["head"], 1.3, row_h, "head  →  ŷ", face=SHARED, edge=INK, size=SMALL)
    _arrow(ax, (x0 + 1.3, y_of["head"] + row_h / 2), (x0 + 1.55, y_of["head"] + row_h / 2))
    for a, b in zip(rows[:-1], rows[1:]):
        if a != "dots" and b != "dots":
            _arrow(ax, (x0 + 0.65, y_of[a] + row_h), (x0 + 0.65, y_of[b]), lw=1.0)
    _text(ax, x0 + stack_w / 2, y_of["head"] + row_h + 0.22, "frozen encoder, blocks 1 … L", size=FONT,
          weight="bold")

    # One column per method (right).
    col_x, col_w, col_pitch = 3.3, 0.99, 1.06
    top = y_of["head"] + row_h
    for i, (method, color) in enumerate(METHOD.items()):
        cx = col_x + i * col_pitch
        _text(ax, cx + col_w / 2, top + 0.22, method, size=FONT, weight="bold", color=color)

    def cell(i, first, last, text, size=SMALL):
        color = list(METHOD.values())[i]
        y0, y1 = y_of[first], y_of[last] + row_h
        _box(ax, col_x + i * col_pitch, y0, col_w, y1 - y0, text, face=_tint(color, 0.72), edge=color, size=size,
             lw=1.3)

    cell(0, "tokens", "tokens", "N·$L_p$ prompt\ntokens")
    cell(0, "head", "head", "mean of prompt\noutputs → head")
    cell(1, "1", "2", "G-prompt\n(shared):\nprefix → k, v")
    cell(1, "3", "5", "E-prompt of\nthe task whose\nkey matches:\nprefix → k, v")
    cell(2, "1", "5", "prefix\n$\\Sigma_j\\,\\alpha_j P_j$\n→ k, v\n\n$\\alpha_j$ from q(x),\nall components")
    cell(3, "1", "L", "branch\n$up_t\\,down_t$\non $W_k$, $W_v$\nof every block\n\none per task t\n\n"
                      "$down_t$: designed\nfrom the inputs,\nfrozen\n$up_t$: trained")
    cell(4, "1", "L", "LoRA\n$B_t A_t$\non $W_q$, $W_v$\nof every block\n\none per task t\n\n"
                      "rows of $A_t$\northogonal to\nearlier tasks'")
    _box(ax, col_x, y_of["input"], 3 * col_pitch - (col_pitch - col_w), row_h,
         "first pass without prompts:\nquery q(x) = [CLS] output", face="white", edge=FROZEN_EDGE, size=SMALL, ls="--")

    _legend(ax, 0.2, 6.08, [(FROZEN, FROZEN_EDGE, "frozen (pretrained)"), (SHARED, INK, "trained (every method)"),
                            (_tint(TASK[0], 0.72), TASK[0], "added by a method (one colour per method)")])
    return fig


# --------------------------------------------------------------------------------------------------------------
# Parts shared by the method figures


def _query_pass(ax, x, y, title="(1) query pass: no prompts, no gradient"):
    """image x → frozen ViT → q(x) from (x, y); returns the q(x) box as (x, y, w, h)."""
    _panel_label(ax, x, y + 0.82, title)
    _box(ax, x, y, 0.85, 0.55, "image x", face="white")
    _arrow(ax, (x + 0.85, y + 0.275), (x + 1.15, y + 0.275))
    _encoder(ax, x + 1.15, y, 1.75, 0.55)
    _arrow(ax, (x + 2.9, y + 0.275), (x + 3.2, y + 0.275))
    _box(ax, x + 3.2, y, 1.2, 0.55, "q(x)\n[CLS] feature", size=SMALL)
    return x + 3.2, y, 1.2, 0.55


def _prefix_chip(ax, x, y, w, h, faces, label="", color=INK, edge=INK):
    """A chip filled with vertical stripes of ``faces`` (one face: plain)."""
    for i, face in enumerate(faces):
        ax.add_patch(Rectangle((x + i * w / len(faces), y), w / len(faces), h, fc=face, lw=0, zorder=3))
    ax.add_patch(Rectangle((x, y), w, h, fc="none", ec=edge, lw=1.0, zorder=4))
    if label:
        _text(ax, x + w / 2, y + h / 2, label, size=SMALL, color=color, zorder=5)


def _prefix_stack(ax, x, y, prefixes, pitch=0.5, row_h=0.4):
    """The frozen encoder drawn upwards from (x, y): tokens, blocks 1–5, ⋮, L, head.

    ``prefixes[b]`` = (faces, label, text colour) draws a key prefix and a value prefix in front of the k and v
    chips of block ``b``. Returns the y of the bottom of each block row.
    """
    names = ["tokens", "1", "2", "3", "4", "5", "dots", "L", "head"]
    y_of = {name: y + i * pitch for i, name in enumerate(names)}
    _chips(ax, x + 0.35, y + 0.04, ["[CLS]", "$x_1$", "$x_2$", "…", "$x_n$"],
           [FROZEN, FROZEN, FROZEN, "white", FROZEN], w=0.42, h=row_h - 0.08, gap=0.06,
           edges=[FROZEN_EDGE] * 3 + ["white", FROZEN_EDGE])
    for name in ("1", "2", "3", "4", "5", "L"):
        yb = y_of[name]
        _box(ax, x, yb, 3.0, row_h, "", face="white")
        _text(ax, x + 0.32, yb + row_h / 2, f"block {name}", size=SMALL)
        _box(ax, x + 0.68, yb + 0.05, 1.62, row_h - 0.1, "", rounding=0.03)
        chip_y, chip_h = yb + 0.09, row_h - 0.18
        _chips(ax, x + 0.74, chip_y, ["q"], [FROZEN], w=0.24, h=chip_h, edges=[INK])
        _chips(ax, x + 1.34, chip_y, ["k"], [FROZEN], w=0.24, h=chip_h, edges=[INK])
        _chips(ax, x + 1.98, chip_y, ["v"], [FROZEN], w=0.24, h=chip_h, edges=[INK])
        if name in prefixes:
            faces, label, color = prefixes[name]
            for px in (x + 1.08, x + 1.72):
                _prefix_chip(ax, px, chip_y, 0.24, chip_h, faces, label, color)
        _box(ax, x + 2.38, yb + 0.05, 0.56, row_h - 0.1, "MLP", size=SMALL, rounding=0.03)
    _text(ax, x + 1.5, y_of["dots"] + row_h / 2, "⋮   blocks 6 … L−1", size=SMALL)
    _box(ax, x, y_of["head"], 1.3, row_h, "[CLS] output", size=SMALL)
    _box(ax, x + 1.7, y_of["head"], 1.3, row_h, "head → ŷ", face=SHARED, edge=INK, size=SMALL)
    _arrow(ax, (x + 1.3, y_of["head"] + row_h / 2), (x + 1.7, y_of["head"] + row_h / 2))
    for a, b in zip(names[:-1], names[1:]):
        if "dots" not in (a, b):
            _arrow(ax, (x + 0.65, y_of[a] + row_h), (x + 0.65, y_of[b]), lw=1.0)
    return y_of


def _bracket(ax, x, y0, y1, color=INK):
    ax.plot([x + 0.08, x, x, x + 0.08], [y0, y0, y1, y1], color=color, lw=1.4, solid_capstyle="butt")


def _trapezoid(ax, x, y, w, wide, narrow, widening, face, edge, lw=1.0, hatch=None):
    """A down (narrowing) or up (``widening``) projection centred on height y."""
    left, right = (narrow, wide) if widening else (wide, narrow)
    ax.add_patch(Polygon([(x, y - left / 2), (x + w, y - right / 2), (x + w, y + right / 2), (x, y + left / 2)],
                         closed=True, fc=face, ec=edge, lw=lw, hatch=hatch, zorder=2))


def _lowrank_panel(ax, x0, base_label, branches, formula):
    """x → W (frozen) → ⊕ → h, one low-rank branch per task below W.

    ``branches``: per task, (down label, down face, up label, up face, edge, task label); the panel spans
    x0 … x0 + 4.3 and y 0.9 … 4.3.
    """
    _text(ax, x0 + 2.1, 4.05, formula, size=FONT + 1)
    yw = 3.3
    _box(ax, x0, yw - 0.25, 0.45, 0.5, "x", face="white")
    _box(ax, x0 + 1.05, yw - 0.35, 1.6, 0.7, base_label, size=SMALL)
    plus_x = x0 + 3.3
    ax.add_patch(Circle((plus_x, yw), 0.14, fc="white", ec=INK, lw=1.2, zorder=3))
    _text(ax, plus_x, yw + 0.01, "+", size=FONT + 2, zorder=4)
    _arrow(ax, (x0 + 0.45, yw), (x0 + 1.05, yw))
    _arrow(ax, (x0 + 2.65, yw), (plus_x - 0.14, yw))
    _arrow(ax, (plus_x + 0.14, yw), (x0 + 4.0, yw))
    _text(ax, x0 + 4.15, yw, "h", size=FONT + 1)
    bus_in, bus_out = x0 + 0.75, plus_x
    ys = [2.5 - 0.75 * i for i in range(len(branches))]
    ax.plot([bus_in, bus_in], [yw, ys[-1]], color=INK, lw=1.0)
    ax.plot([bus_out, bus_out], [ys[-1], yw - 0.14], color=INK, lw=1.0)
    _arrow(ax, (bus_out, ys[0]), (bus_out, yw - 0.14))
    for y, (down, down_face, up, up_face, edge, label) in zip(ys, branches):
        _arrow(ax, (bus_in, y), (x0 + 1.05, y), lw=1.0)
        _trapezoid(ax, x0 + 1.05, y, 0.6, 0.5, 0.14, False, down_face, edge)
        _trapezoid(ax, x0 + 2.05, y, 0.6, 0.5, 0.14, True, up_face, edge)
        ax.plot([x0 + 1.65, x0 + 2.05], [y, y], color=INK, lw=1.0)
        ax.plot([x0 + 2.65, bus_out], [y, y], color=INK, lw=1.0)
        _text(ax, x0 + 1.35, y - 0.38, down, size=SMALL)
        _text(ax, x0 + 2.35, y - 0.38, up, size=SMALL)
        _text(ax, bus_out + 0.12, y, label, size=SMALL, ha="left")


# --------------------------------------------------------------------------------------------------------------
# L2P


def l2p():
    """L2P: query pass, key match against a pool of M = 10 keys and prompts (top N = 5), prompted pass, loss."""
    fig, ax = _canvas(8.6, 6.3)
    m, selected = 10, (1, 3, 4, 6, 8)            # pool rows chosen for this x (N = 5), 0-based
    scores = (0.31, 0.78, 0.22, 0.71, 0.83, 0.40, 0.66, 0.18, 0.74, 0.35)
    qx, qy, qw, qh = _query_pass(ax, 0.2, 5.2)

    # (2) key match against the pool.
    px, py0, rh = 5.35, 1.35, 0.35
    top = py0 + m * rh
    _panel_label(ax, px, 6.02, "(2) key match")
    _text(ax, px + 1.55, top + 0.75, "prompt pool, shared by all tasks", size=SMALL, weight="bold")
    _text(ax, px + 0.35, top + 0.3, "cos(q(x), $k_j$)", size=SMALL)
    _text(ax, px + 1.11, top + 0.3, "key", size=SMALL)
    _text(ax, px + 2.2, top + 0.3, "prompt ($L_p$ tokens)", size=SMALL)
    _arrow(ax, (qx + qw, qy + qh / 2), (px + 0.3, top + 0.46), rad=-0.35)
    for j in range(m):
        y = top - (j + 1) * rh + 0.04
        chosen = j in selected
        face, edge = (SHARED, INK) if chosen else (_tint(SHARED, 0.75), FROZEN_EDGE)
        ax.add_patch(Rectangle((px + 0.03, y + 0.05), 0.62 * scores[j], rh - 0.18,
                               fc=INK if chosen else "#b0b0b0", lw=0))
        _box(ax, px + 0.8, y, 0.62, rh - 0.08, f"$k_{{{j + 1}}}$", face=face, edge=edge, size=SMALL,
             rounding=0.03, lw=1.4 if chosen else 0.8)
        _chips(ax, px + 1.55, y, [""] * 5, [face] * 5, w=0.2, h=rh - 0.08, gap=0.03, edges=[edge] * 5)
        _text(ax, px + 2.78, y + (rh - 0.08) / 2, f"$P_{{{j + 1}}}$", size=SMALL, ha="left")
    _text(ax, px + 1.55, py0 - 0.12, "M = 10 keys and prompts;\nthe top N = 5 are selected (dark)", size=SMALL)
    ax.add_patch(FancyBboxPatch((px - 0.1, py0 - 0.45), 3.35, m * rh + 1.45,
                                boxstyle="round,pad=0,rounding_size=0.05", fc="none", ec=FROZEN_EDGE, lw=0.8,
                                ls="--", zorder=0))

    # (3) prompted pass.
    _panel_label(ax, 0.2, 4.6, "(3) prompted pass")
    labels = ["[CLS]"] + [f"$P_{{s_{i}}}$" for i in range(1, 6)] + ["$x_1$", "…", "$x_n$"]
    faces = [FROZEN] + [SHARED] * 5 + [FROZEN, "white", FROZEN]
    edges = [FROZEN_EDGE] + [INK] * 5 + [FROZEN_EDGE, "white", FROZEN_EDGE]
    cxs = _chips(ax, 0.25, 3.65, labels, faces, w=0.44, h=0.4, gap=0.05, edges=edges)
    _text(ax, (cxs[1] + cxs[5]) / 2, 3.42, "selected prompts, after [CLS]", size=SMALL)
    _text(ax, (cxs[6] + cxs[8]) / 2, 3.42, "patch tokens", size=SMALL)
    _arrow(ax, (px - 0.1, 4.2), (cxs[4], 4.08), rad=0.25)
    _text(ax, 3.95, 4.62, "$P_{s_1}, …, P_{s_N}$", size=SMALL)
    _arrow(ax, (2.3, 3.3), (2.3, 2.95))
    _encoder(ax, 0.25, 2.35, 4.1, 0.6, "frozen pretrained ViT (same weights)")
    _arrow(ax, (2.3, 2.35), (2.3, 2.0))
    _box(ax, 0.25, 1.45, 2.65, 0.55, "mean of the N·$L_p$ prompt outputs", size=SMALL)
    _arrow(ax, (2.9, 1.72), (3.25, 1.72))
    _box(ax, 3.25, 1.45, 1.1, 0.55, "head → ŷ", face=SHARED, edge=INK, size=SMALL)
    _legend(ax, 0.3, 1.05, [(FROZEN, FROZEN_EDGE, "frozen"), (SHARED, INK, "trained (keys, prompts, head)")])

    _box(ax, 0.25, 0.15, 8.1, 0.5,
         "loss = CE(ŷ, y) + λ $\\Sigma_{i=1}^{N}$ (1 − cos(q(x), $k_{s_i}$)):   "
         "the second term pulls the selected keys toward q(x)", face="white", size=SMALL)
    return fig


# --------------------------------------------------------------------------------------------------------------
# DualPrompt


def dualprompt():
    """DualPrompt: top-1 key match over one E-prompt per task; G-prefixes in blocks 1–2, E-prefixes in 3–5."""
    fig, ax = _canvas(8.6, 6.3)
    n_tasks, t_hat = 5, 2                         # task 3 (0-based 2) has the nearest key
    scores = (0.35, 0.52, 0.86, 0.41, 0.28)
    qx, qy, qw, qh = _query_pass(ax, 0.2, 5.2)
    y_of = _prefix_stack(ax, 5.4, 0.7, {
        "1": ((SHARED,), "g", INK), "2": ((SHARED,), "g", INK),
        "3": ((TASK[t_hat],), "e", "white"), "4": ((TASK[t_hat],), "e", "white"),
        "5": ((TASK[t_hat],), "e", "white")})
    _panel_label(ax, 5.4, 6.02, "(3) prompted pass")
    _text(ax, 6.9, 5.7, "prefixes in front of the keys and\nvalues of attention; tokens unchanged",
          size=SMALL)

    # (2) the E-prompt pool: one key and one E-prompt per task.
    _panel_label(ax, 0.2, 4.6, "(2) key match: one key $k_t$ and E-prompt $e_t$ per task")
    _text(ax, 0.65, 4.2, "key", size=SMALL)
    _text(ax, 1.9, 4.2, "E-prompt", size=SMALL)
    _text(ax, 3.95, 4.2, "cos(q(x), $k_t$)", size=SMALL)
    _arrow(ax, (qx + qw / 2, qy), (3.95, 4.35))
    rh = 0.4
    for t in range(n_tasks):
        y = 3.7 - t * rh
        chosen = t == t_hat
        face = TASK[t] if chosen else _tint(TASK[t], 0.55)
        edge, color, lw = (INK, "white", 1.5) if chosen else (FROZEN_EDGE, INK, 0.8)
        _box(ax, 0.3, y, 0.7, rh - 0.08, f"$k_{t + 1}$", face=face, edge=edge, color=color, size=SMALL,
             rounding=0.03, lw=lw)
        _chips(ax, 1.25, y, [""] * 5, [face] * 5, w=0.2, h=rh - 0.08, gap=0.03, edges=[edge] * 5)
        _text(ax, 2.45, y + (rh - 0.08) / 2, f"$e_{t + 1}$", size=SMALL, ha="left")
        ax.add_patch(Rectangle((3.4, y + 0.05), 1.0 * scores[t], rh - 0.18, fc=INK if chosen else "#b0b0b0",
                               lw=0))
    ysel = 3.7 - t_hat * rh + (rh - 0.08) / 2
    _bracket(ax, 5.25, y_of["3"], y_of["5"] + 0.4, TASK[t_hat])
    _arrow(ax, (4.35, ysel), (5.22, (y_of["3"] + y_of["5"] + 0.4) / 2), color=TASK[t_hat], lw=1.6)
    _text(ax, 2.3, 1.75, "nearest key = predicted task $\\hat{t}$ = 3  →  $e_3$ in blocks 3–5", size=SMALL)

    _box(ax, 0.3, 1.05, 0.7, 0.32, "g", face=SHARED, edge=INK, size=SMALL, rounding=0.03)
    _text(ax, 1.15, 1.21, "G-prompt, shared by all tasks → blocks 1–2", size=SMALL, ha="left")
    _bracket(ax, 5.25, y_of["1"], y_of["2"] + 0.4, SHARED)
    _arrow(ax, (4.35, 1.35), (5.22, (y_of["1"] + y_of["2"] + 0.4) / 2), color=SHARED, lw=1.6)
    _text(ax, 0.2, 0.62, "training on task t: the true task's $e_t$ is used and $k_t$ pulled toward q(x);\n"
                         "test: the nearest key chooses the E-prompt (task identification).", size=SMALL, ha="left")
    _legend(ax, 0.3, 0.15, [(FROZEN, FROZEN_EDGE, "frozen"), (SHARED, INK, "trained, shared"),
                            (TASK[0], INK, "task t's key and E-prompt")], gap=0.12)
    return fig


# --------------------------------------------------------------------------------------------------------------
# CODA-Prompt


def coda_prompt():
    """CODA-Prompt: components K_j, A_j, P_j added per task, a weight α_j for each, the prompt Σ_j α_j P_j."""
    fig, ax = _canvas(8.6, 6.6)
    per_task, current = 3, 2                      # 3 tasks of 3 components; task 3 is being learnt
    alphas = (0.25, 0.55, 0.12, 0.38, 0.80, 0.18, 0.92, 0.45, 0.62)
    qx, qy, qw, qh = _query_pass(ax, 0.2, 5.55)
    y_of = _prefix_stack(ax, 5.4, 0.7, {b: ((_tint(TASK[0], 0.55), _tint(TASK[1], 0.55), TASK[2]), "", INK)
                                        for b in "12345"})
    _panel_label(ax, 5.4, 6.37, "(3) prompted pass")
    _text(ax, 6.9, 5.55, "prefix $p$ in blocks 1–5\n(one set of $K$, $A$, $P$ per block)", size=SMALL)

    _panel_label(ax, 0.2, 5.15, "(2) weights of all m components")
    _arrow(ax, (qx + qw / 2, qy), (qx + qw / 2, 5.0))
    _text(ax, 2.45, 4.85, "$\\alpha_j$ = cos(q(x) ⊙ $A_j$, $K_j$)   for every j: no top-k", size=FONT)
    rows = {"K": 3.95, "A": 3.5, "P": 2.65, "alpha": 1.75}
    _text(ax, 0.2, rows["K"] + 0.15, "keys $K_j$", size=SMALL, ha="left")
    _text(ax, 0.2, rows["A"] + 0.15, "attention $A_j$", size=SMALL, ha="left")
    _text(ax, 0.2, rows["P"] + 0.35, "prompt\ncomponents $P_j$", size=SMALL, ha="left")
    _text(ax, 0.2, rows["alpha"] + 0.35, "weights $\\alpha_j$", size=SMALL, ha="left")
    x, pitch, w = 1.5, 0.36, 0.28
    for j, alpha in enumerate(alphas):
        task = j // per_task
        xj = x + j * pitch + task * 0.16
        face, edge = (TASK[task], INK) if task == current else (_tint(TASK[task], 0.55), FROZEN_EDGE)
        if j % per_task == 0:
            label = f"task {task + 1}" + (" (now)" if task == current else "")
            _text(ax, xj + (per_task * pitch - (pitch - w)) / 2, 4.45, label, size=SMALL, color=TASK[task],
                  weight="bold")
        ax.add_patch(Rectangle((xj, rows["K"]), w, 0.3, fc=face, ec=edge, lw=1.0))
        ax.add_patch(Rectangle((xj, rows["A"]), w, 0.3, fc=face, ec=edge, lw=1.0))
        for s in range(4):
            ax.add_patch(Rectangle((xj, rows["P"] + s * 0.175), w, 0.175, fc=face, ec=edge, lw=0.8))
        ax.add_patch(Rectangle((xj, rows["alpha"]), w, 0.75 * alpha, fc=face, ec=edge, lw=1.0))
        _text(ax, xj + w / 2, rows["alpha"] - 0.17, f"{j + 1}", size=SMALL)
    ax.plot([x - 0.05, x + 9 * pitch + 0.3], [rows["alpha"], rows["alpha"]], color=INK, lw=0.8)
    _text(ax, 0.2, rows["alpha"] - 0.25, "component j\n(here m = 9)", size=SMALL, ha="left")

    _box(ax, 0.3, 0.7, 3.9, 0.45, "prompt $p$ = $\\Sigma_{j=1}^{m}\\,\\alpha_j P_j$   →  prefixes $p_k$, $p_v$",
         face="white", edge=INK, size=FONT)
    _bracket(ax, 5.25, y_of["1"], y_of["5"] + 0.4)
    _arrow(ax, (4.2, 0.92), (5.22, (y_of["1"] + y_of["5"] + 0.4) / 2), lw=1.4)
    _legend(ax, 0.3, 0.45, [(FROZEN, FROZEN_EDGE, "frozen"), (_tint(TASK[0], 0.55), FROZEN_EDGE,
                                                             "earlier tasks' (frozen)"),
                            (TASK[2], INK, "current task's (trained)")], gap=0.1)
    _text(ax, 0.3, 0.13, "the head is trained too; the prefix stripes show p mixing all tasks' components",
          size=SMALL, ha="left")
    return fig


# --------------------------------------------------------------------------------------------------------------
# InfLoRA


def inflora():
    """InfLoRA: low-rank branches on one frozen projection; the designed down_t lies in M^⊥ (old inputs)."""
    fig, ax = _canvas(8.6, 4.9)
    _panel_label(ax, 0.2, 4.6, "(a) one projection $W$ ($W_k$ or $W_v$), task t = 3")
    branches = [("$down_1$", _tint(TASK[0], 0.55), "$up_1$", _tint(TASK[0], 0.55), FROZEN_EDGE, "task 1\nfrozen"),
                ("$down_2$", _tint(TASK[1], 0.55), "$up_2$", _tint(TASK[1], 0.55), FROZEN_EDGE, "task 2\nfrozen"),
                ("$down_3$", _tint(TASK[2], 0.55), "$up_3$", TASK[2], INK, "task 3:\n$up_3$ trained")]
    _lowrank_panel(ax, 0.2, "$W$, frozen\n$d_{out}$ × $d_{in}$", branches,
                   "h = W x + $\\Sigma_{j=1}^{t}\\,up_j\\,down_j\\,x$")
    _text(ax, 0.2, 0.32, "$down_t$: r × $d_{in}$, designed from the inputs, frozen\n"
                         "$up_t$: $d_{out}$ × r, trained, initialised at 0", size=SMALL, ha="left")

    _panel_label(ax, 4.85, 4.6, "(b) why the design protects old tasks")
    plane = [(5.0, 1.1), (7.0, 1.1), (7.9, 2.0), (5.9, 2.0)]
    ax.add_patch(Polygon(plane, closed=True, fc="#eeeeee", ec=FROZEN_EDGE, lw=1.0, zorder=1))
    _text(ax, 5.25, 1.25, "M", size=FONT + 1, ha="left", style="italic")
    _text(ax, 5.0, 0.8, "M: span of tasks 1–2 inputs (stored)", size=SMALL, ha="left")
    for (px, py), t in zip([(5.6, 1.3), (5.95, 1.6), (6.3, 1.25), (6.9, 1.75), (6.1, 1.85), (7.2, 1.35),
                            (6.7, 1.45), (7.5, 1.8)], [0, 1, 0, 1, 0, 1, 0, 1]):
        ax.add_patch(Circle((px, py), 0.05, fc=_tint(TASK[t], 0.3), ec=INK, lw=0.5, zorder=2))
    c = (6.45, 1.55)
    ax.plot([c[0], c[0]], [c[1], 4.0], color=INK, lw=1.0, ls="--", zorder=2)
    _text(ax, c[0] - 0.1, 4.0, "$M^{\\perp}$", size=FONT + 1, ha="right")
    for px, py in [(7.6, 2.9), (7.3, 3.5), (7.85, 3.3), (7.7, 3.65)]:
        ax.add_patch(Circle((px, py), 0.05, fc=TASK[2], ec=INK, lw=0.5, zorder=4))
    x_new, foot, on_axis = (7.45, 3.2), (7.45, 1.75), (c[0], 3.2 - 0.2)
    ax.add_patch(Circle(x_new, 0.07, fc=TASK[2], ec=INK, lw=1.0, zorder=5))
    _text(ax, 7.55, 3.95, "task 3 inputs x", size=SMALL, color=TASK[2])
    ax.plot([x_new[0], foot[0]], [x_new[1], foot[1]], color=FROZEN_EDGE, lw=1.0, ls=":", zorder=3)
    ax.plot([x_new[0], on_axis[0]], [x_new[1], on_axis[1]], color=FROZEN_EDGE, lw=1.0, ls=":", zorder=3)
    _arrow(ax, c, on_axis, color=TASK[2], lw=3.0, z=4)
    _text(ax, c[0] - 0.12, 2.45, "row of $down_3$:\nprojection of\ntask 3 inputs\nonto $M^{\\perp}$", size=SMALL,
          ha="right")
    _text(ax, 6.55, 2.82, "(I − M$M^{\\top}$) x", size=SMALL, ha="left")
    _text(ax, 6.6, 0.32, "$down_3\\,x_{old}$ ≈ 0 for inputs of tasks 1–2  ⇒  $up_3\\,down_3\\,x_{old}$ ≈ 0:\n"
                         "training $up_3$ does not change their outputs", size=SMALL)
    return fig


# --------------------------------------------------------------------------------------------------------------
# O-LoRA


def _directions(ax, origin, vectors, title):
    for t, (dx, dy) in enumerate(vectors):
        _arrow(ax, origin, (origin[0] + dx, origin[1] + dy), color=TASK[t], lw=2.2, z=3)
        _text(ax, origin[0] + 1.18 * dx, origin[1] + 1.18 * dy, f"$A_{t + 1}$", size=SMALL, color=TASK[t])
    ax.add_patch(Circle(origin, 0.04, fc=INK, lw=0, zorder=4))
    _text(ax, origin[0] + 0.2, origin[1] - 0.9, title, size=SMALL)


def olora():
    """O-LoRA: one LoRA per task on W_q and W_v, the tasks' down rows kept orthogonal (against IncLoRA)."""
    fig, ax = _canvas(8.6, 4.9)
    _panel_label(ax, 0.2, 4.6, "(a) $W_q$ and $W_v$ of every block, task t = 3")
    branches = [("$A_1$", _tint(TASK[0], 0.55), "$B_1$", _tint(TASK[0], 0.55), FROZEN_EDGE, "task 1\nfrozen"),
                ("$A_2$", _tint(TASK[1], 0.55), "$B_2$", _tint(TASK[1], 0.55), FROZEN_EDGE, "task 2\nfrozen"),
                ("$A_3$", TASK[2], "$B_3$", TASK[2], INK, "task 3\ntrained")]
    _lowrank_panel(ax, 0.2, "$W$, frozen\n$d_{out}$ × $d_{in}$", branches,
                   "h = W x + $\\Sigma_{j=1}^{t}\\,B_j A_j\\,x$")
    _text(ax, 0.2, 0.32, "$A_t$ (down): r × $d_{in}$     $B_t$ (up): $d_{out}$ × r", size=SMALL, ha="left")

    _panel_label(ax, 4.85, 4.6, "(b) row spaces of $A_1$, $A_2$, $A_3$")
    _directions(ax, (5.6, 2.35), [(0.95, 0.0), (0.0, 0.95), (-0.5, -0.45)],
                "O-LoRA: mutually\northogonal")
    _directions(ax, (7.25, 2.35), [(0.95, 0.3), (0.75, 0.65), (0.45, 0.88)],
                "IncLoRA ($\\lambda_1$ = 0):\nno constraint, overlap")
    _box(ax, 4.85, 0.2, 3.55, 0.75,
         "$L_t = L_{task}$ + $\\lambda_1\\,\\Sigma_{s<t}\\,\\Vert A_s A_t^{\\top}\\Vert$\n"
         "pushes the rows of $A_t$ orthogonal to the earlier ones", face="white", size=SMALL)
    return fig


FIGURES = {
    "book_map": book_map,
    "l2p": l2p,
    "dualprompt": dualprompt,
    "coda_prompt": coda_prompt,
    "inflora": inflora,
    "olora": olora,
}


def write_all(out_dir: Path = OUT_DIR, png_dir: Path | None = None) -> list[Path]:
    """Draw every figure into ``out_dir/<name>.svg`` (and ``png_dir/<name>.png`` if given)."""
    _setup()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        fig = draw()
        path = out_dir / f"{name}.svg"
        fig.savefig(path, format="svg", metadata={"Date": None, "Title": draw.__doc__.splitlines()[0]})
        if png_dir is not None:
            Path(png_dir).mkdir(parents=True, exist_ok=True)
            fig.savefig(Path(png_dir) / f"{name}.png", format="png", dpi=700 / fig.get_figwidth())
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the SVG files (default: book/figures)")
    parser.add_argument("--png", type=Path, default=None, help="also write PNG previews, 700 px wide, here")
    args = parser.parse_args()
    for path in write_all(args.out, args.png):
        print(path)


if __name__ == "__main__":
    main()
