"""nbval with measured tolerances: numbers that depend on the CPU's floating-point path are compared within a
stated bound, everything else exactly.

Why. The math libraries choose their kernels per CPU (AVX2 or AVX-512, oneMKL's and oneDNN's blocking, PyTorch's
vectorised reductions), so a chapter executed on an Intel Xeon prints accuracies, losses and round-off sizes
that differ from those an AMD EPYC stored — by a last digit, or, after a few hundred optimizer steps, by a test
sample. Bit-identical outputs cannot be promised across CPUs (and not at all on arm64), so the check compares:

- **exactly**: every cell without a ``tolerance:NAME`` tag (nbval's own comparison), and in a tagged cell all
  text between the numbers (runs of spaces excepted, which tables use to align columns), the count and order
  of the numbers, and integers (counts, sizes, shapes) unless the tolerance class says ``integers: true``;
- **within the class's bound**: each decimal number of a tagged cell, ``|test − stored| ≤ abs + rel·|stored|``.

The classes and their bounds are defined in ``book/tolerances.yml``: book-wide bounds, and for each chapter the
classes its cells use with the spread measured there by ``tools/output_spread.py`` (the largest change of any
number of that class over several simulated CPUs); a bound is never below its measurement (a test checks). A
change of more than the bound fails the cell, with the numbers that moved in the report.

The plugin is loaded by the repository's ``conftest.py``; ``tools/output_spread.py`` uses the same comparison
on whole executed notebooks.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE_FILE = ROOT / "book" / "tolerances.yml"
TAG_PREFIX = "tolerance:"

# A number standing alone: not part of a name (vit_base_patch16_224, A_last, float32) or of a longer number.
NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]*\w)")
SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Tolerance:
    """How far a decimal number of a tagged cell may move: ``|test − stored| ≤ abs + rel·|stored|``.

    ``integers`` extends the bound to integers (counts that follow from trained weights, such as how often
    each prompt is selected); otherwise integers must be equal. ``measured`` is the spread the bound rests on.
    """

    name: str
    abs: float = 0.0
    rel: float = 0.0
    integers: bool = False
    measured: float | None = None
    note: str = ""

    def allows(self, stored: float, test: float) -> bool:
        return abs(test - stored) <= self.abs + self.rel * abs(stored)


@dataclass
class ToleranceTable:
    """``book/tolerances.yml``: book-wide tolerance classes (``classes``) and, for each chapter (its path under
    ``book/``), the classes its cells use, each with the spread measured in that chapter (``measured``) and
    optionally its own bound (``abs``, ``rel``, ``integers``, ``note`` override the book-wide ones)."""

    chapters: dict[str, dict[str, Tolerance]] = field(default_factory=dict)
    book_wide: dict[str, Tolerance] = field(default_factory=dict)

    KEYS = frozenset({"abs", "rel", "integers", "measured", "note"})

    @classmethod
    def load(cls, path: Path = TOLERANCE_FILE) -> "ToleranceTable":
        raw = yaml.safe_load(path.read_text()) or {}
        unknown = set(raw) - {"classes", "chapters"}
        if unknown:
            raise ValueError(f"{path.name}: unknown sections {sorted(unknown)}; allowed: classes, chapters")
        book_wide = raw.get("classes") or {}
        for name, spec in book_wide.items():
            cls._check(path, f"class {name!r}", spec)
        chapters: dict[str, dict[str, Tolerance]] = {}
        for chapter, classes in (raw.get("chapters") or {}).items():
            chapters[chapter] = {}
            for name, spec in (classes or {}).items():
                cls._check(path, f"{chapter} class {name!r}", spec or {})
                if name not in book_wide and "abs" not in (spec or {}) and "rel" not in (spec or {}):
                    raise ValueError(f"{path.name}: {chapter} uses class {name!r}, which is not under `classes` "
                                     "and gives no bound (abs or rel) of its own")
                chapters[chapter][name] = Tolerance(name=name, **{**book_wide.get(name, {}), **(spec or {})})
        return cls(chapters, {name: Tolerance(name=name, **spec) for name, spec in book_wide.items()})

    @classmethod
    def _check(cls, path: Path, where: str, spec: dict) -> None:
        unknown = set(spec) - cls.KEYS
        if unknown:
            raise ValueError(f"{path.name}: {where} has unknown keys {sorted(unknown)}; allowed: {sorted(cls.KEYS)}")
        for key in ("abs", "rel", "measured"):
            if key in spec:  # YAML 1.1 reads 3e-18 (no dot) as a string
                try:
                    spec[key] = float(spec[key])
                except (TypeError, ValueError):
                    raise ValueError(f"{path.name}: {where}: {key} must be a number, got {spec[key]!r}") from None

    def for_chapter(self, chapter: str, measuring: bool = False) -> dict[str, Tolerance]:
        """The classes of ``chapter`` (its path under ``book/``, with or without the ``book/`` prefix). The check
        uses only the classes listed for the chapter (each with its measurement); ``measuring`` adds the
        book-wide ones, so that ``tools/output_spread.py`` can measure a chapter not yet listed."""
        listed = self.chapters.get(chapter.replace("\\", "/").removeprefix("book/"), {})
        return {**self.book_wide, **listed} if measuring else listed


def cell_tolerance(tags: list[str], classes: dict[str, Tolerance], where: str) -> Tolerance | None:
    """The tolerance class a cell's ``tolerance:NAME`` tag names, None for an untagged cell."""
    names = [tag[len(TAG_PREFIX):] for tag in tags if tag.startswith(TAG_PREFIX)]
    if not names:
        return None
    if len(names) > 1 or names[0] not in classes:
        raise ValueError(f"{where}: tags {names} must name exactly one tolerance class of this chapter in "
                         f"{TOLERANCE_FILE.name}; defined: {sorted(classes) or 'none'}")
    return classes[names[0]]


def _value(token: str) -> float:
    return float(token.replace("\u2212", "-"))


def _is_integer(token: str) -> bool:
    return not any(c in token for c in ".eE")


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """(text pieces, numbers): ``text == pieces[0] + numbers[0] + pieces[1] + …``."""
    pieces, numbers, start = [], [], 0
    for match in NUMBER.finditer(text):
        pieces.append(text[start:match.start()])
        numbers.append(match.group())
        start = match.end()
    pieces.append(text[start:])
    return pieces, numbers


@dataclass
class Comparison:
    """The outcome of comparing one stored output string with its re-computed one."""

    same_structure: bool  # text pieces (up to runs of spaces) and the count of numbers agree
    float_deviation: float = 0.0  # max |Δ| over decimal numbers
    integer_deviation: float = 0.0  # max |Δ| over integers
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (stored, test, context) beyond the bound

    @property
    def deviation(self) -> float:
        return max(self.float_deviation, self.integer_deviation)


def compare_text(stored: str, test: str, tolerance: Tolerance | None) -> Comparison:
    """Compare two output strings number by number (see the module docstring). With ``tolerance`` None every
    number must be equal, but the deviations are still measured (for ``tools/output_spread.py``)."""
    stored_pieces, stored_numbers = split_numbers(stored)
    test_pieces, test_numbers = split_numbers(test)
    if len(stored_numbers) != len(test_numbers) or [SPACES.sub(" ", p) for p in stored_pieces] != [
        SPACES.sub(" ", p) for p in test_pieces
    ]:
        return Comparison(same_structure=False)
    result = Comparison(same_structure=True)
    for index, (a, b) in enumerate(zip(stored_numbers, test_numbers)):
        x, y = _value(a), _value(b)
        if x == y:  # 0.64 and 0.640, -0.00 and 0.00
            continue
        integer = _is_integer(a) and _is_integer(b)
        if integer:
            result.integer_deviation = max(result.integer_deviation, abs(x - y))
        else:
            result.float_deviation = max(result.float_deviation, abs(x - y))
        allowed = tolerance is not None and (tolerance.integers or not integer) and tolerance.allows(x, y)
        if not allowed:
            context = (stored_pieces[index][-40:] + "⟨" + a + "⟩").replace("\n", "⏎")
            result.moved.append((a, b, context))
    return result


def flatten_outputs(outputs: list[dict[str, Any]], skip: tuple[str, ...], sanitize) -> dict[str, list[Any]]:
    """nbval's view of a cell's outputs: values by output key, MIME bundles flattened, skipped keys left out."""
    flat: dict[str, list[Any]] = {}
    for output in outputs:
        for key, value in output.items():
            if key in skip:
                continue
            if key == "data":
                for mime, payload in value.items():
                    if mime not in skip:
                        flat.setdefault(mime, []).append(sanitize(payload))
            else:
                flat.setdefault(key, []).append(sanitize(value))
    return flat


def compare_cell(stored: dict[str, list[Any]], test: dict[str, list[Any]], tolerance: Tolerance | None) -> tuple[
        list[str], float]:
    """(reasons the cell fails, largest deviation of any number) for two flattened output sets."""
    reasons: list[str] = []
    deviation = 0.0
    if set(stored) != set(test):
        return [f"output kinds differ: stored {sorted(stored)}, computed {sorted(test)}"], math.inf
    for key in stored:
        if len(stored[key]) != len(test[key]):
            reasons.append(f"{key}: {len(stored[key])} stored outputs, {len(test[key])} computed")
            deviation = math.inf
            continue
        for a, b in zip(stored[key], test[key]):
            if a == b:
                continue
            if not isinstance(a, str) or not isinstance(b, str):
                reasons.append(f"{key}: outputs differ")
                deviation = math.inf
                continue
            comparison = compare_text(a, b, tolerance)
            if not comparison.same_structure:
                changed = [line for line in difflib.unified_diff(a.splitlines(), b.splitlines(), "stored",
                                                                 "computed", n=0, lineterm="")][2:8]
                reasons.append(f"{key}: the text around the numbers differs (not only numbers moved):\n"
                               + "\n".join(changed))
                deviation = math.inf
                continue
            deviation = max(deviation, comparison.deviation)
            for old, new, context in comparison.moved[:8]:
                bound = "must be equal" if tolerance is None or (_is_integer(old) and not tolerance.integers) else (
                    f"bound {tolerance.abs:g}" + (f" + {tolerance.rel:g}·|stored|" if tolerance.rel else ""))
                reasons.append(f"{key}: {context} stored {old}, computed {new} ({bound})")
    return reasons, deviation


# ---------------------------------------------------------------------------------------------- pytest plugin
SKIPPED_KEYS = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def tolerances_of(notebook: Path) -> tuple[str, dict[str, Tolerance]]:
    """(the chapter's name in its book, its tolerance classes): the nearest ``tolerances.yml`` in the
    notebook's folder or above names chapters by their path relative to its own folder."""
    notebook = notebook.resolve()
    for folder in notebook.parents:
        if (folder / TOLERANCE_FILE.name).is_file():
            chapter = notebook.relative_to(folder).as_posix()
            return chapter, _load_once(folder / TOLERANCE_FILE.name).for_chapter(chapter)
    return notebook.name, {}


@functools.lru_cache(maxsize=None)
def _load_once(path: Path) -> ToleranceTable:
    """The table of ``path``, read once per test session (nbval compares cell after cell)."""
    return ToleranceTable.load(path)


def _install() -> None:
    from nbval.plugin import IPyNbCell, transform_streams_for_comparison

    original = IPyNbCell.compare_outputs
    if getattr(original, "_with_tolerance", False):
        return

    def compare_outputs(self, test, ref, skip_compare=None):
        chapter, classes = tolerances_of(Path(self.fspath))
        tolerance = cell_tolerance(list(self.cell.metadata.get("tags", [])), classes, f"{chapter} cell {self.cell_num}")
        if tolerance is None:
            return original(self, test, ref, skip_compare)
        skip = tuple(skip_compare or self.parent.skip_compare)
        stored = flatten_outputs(transform_streams_for_comparison(ref), skip, self.sanitize)
        computed = flatten_outputs(transform_streams_for_comparison(test), skip, self.sanitize)
        reasons, _ = compare_cell(stored, computed, tolerance)
        self.comparison_traceback = [f"tolerance class {tolerance.name!r} of {chapter} "
                                     f"(abs {tolerance.abs:g}, rel {tolerance.rel:g}, integers {tolerance.integers}):"]
        self.comparison_traceback += reasons
        return not reasons

    compare_outputs._with_tolerance = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_configure(config) -> None:
    _install()  # only changes nbval's comparison of tagged cells; inert when nbval collects nothing


# ------------------------------------------------------------------------------- whole notebooks (the tools)
def compare_notebooks(stored_path: Path, executed_path: Path, classes: dict[str, Tolerance]) -> dict[str, Any]:
    """Compare an executed copy of a chapter with its stored outputs as the nbval check does (sanitizer and
    tolerance tags included). Returns ``{"spread": {class: max |Δ|}, "cells": {n: {...}}, "failures": {n: why}}``
    where class ``exact`` gathers the untagged cells and ``n`` is nbval's cell number."""
    import nbformat
    from nbval.plugin import coalesce_streams, get_sanitize_patterns, transform_streams_for_comparison

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())

    def sanitize(value):
        if not isinstance(value, str):
            return value
        for regex, replace in patterns:
            value = re.sub(regex, replace, value)
        return value

    stored = nbformat.read(stored_path, as_version=4)
    executed = nbformat.read(executed_path, as_version=4)
    stored_code = [c for c in stored.cells if c.cell_type == "code"]
    executed_code = [c for c in executed.cells if c.cell_type == "code"]
    report: dict[str, Any] = {"spread": {}, "cells": {}, "failures": {}}
    if len(stored_code) != len(executed_code):
        report["failures"]["-"] = "the chapters have different cells"
        return report
    for number, (a, b) in enumerate(zip(stored_code, executed_code)):
        source = a.source
        if "NBVAL_SKIP" in source or "NBVAL_IGNORE_OUTPUT" in source or a.execution_count is None:
            continue
        tags = list(a.metadata.get("tags", []))
        if "nbval-skip" in tags or "nbval-ignore-output" in tags:
            continue
        tolerance = cell_tolerance(tags, classes, f"{stored_path.name} cell {number}")
        flat_a = flatten_outputs(transform_streams_for_comparison(coalesce_streams(a.outputs)), SKIPPED_KEYS, sanitize)
        flat_b = flatten_outputs(transform_streams_for_comparison(coalesce_streams(b.outputs)), SKIPPED_KEYS, sanitize)
        reasons, deviation = compare_cell(flat_a, flat_b, tolerance)
        label = tolerance.name if tolerance else "exact"
        report["spread"][label] = max(report["spread"].get(label, 0.0), deviation)
        report["cells"][number] = {"class": label, "deviation": deviation}
        if reasons:
            report["failures"][number] = "; ".join(reasons[:4])
    return report
