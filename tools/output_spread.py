"""Measure how far the chapters' printed numbers move on another CPU: the evidence behind the tolerances.

The math libraries pick their code path per CPU (vector width, blocking, reduction order), so the same
chapter prints slightly different floats on an AMD EPYC, an Intel Xeon with AVX-512 or an Apple M-series.
The same switch can be forced on one machine through the libraries' own environment variables; each
"simulated CPU" below gives a different sha256 of a ``pecft-vit-tiny`` forward pass on an AVX2 AMD EPYC:

    MKL_CBWR=COMPATIBLE           oneMKL's conditional-numerical-reproducibility path (matrix products)
    ATEN_CPU_CAPABILITY=default   PyTorch's own kernels without AVX2/AVX-512 (softmax, norms, reductions)
    ONEDNN_MAX_CPU_ISA=SSE41      oneDNN limited to SSE4.1 (convolutions such as the patch embedding)

    python tools/output_spread.py run --env MKL_CBWR=COMPATIBLE --out /tmp/spread/mkl   # execute all chapters
    python tools/output_spread.py compare /tmp/spread/mkl /tmp/spread/aten --json spread.json

``run`` executes chapters (two at a time) into ``--out`` under the environment ``make`` pins plus ``--env``;
``compare`` sets each executed copy against the stored outputs in ``book/`` with the same tokenizer the
nbval check uses (``tests/nbval_numeric.py``) and prints, per chapter and tolerance class, the largest
deviation of any number and the cells whose text, integers or structure changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# The environment of every executed chapter (the Makefile exports the same).
PINNED_ENV = {"PECFT_PROFILE": "quick", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1"}


def chapters() -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _execute(job: tuple[str, str]) -> tuple[str, float, str]:
    import nbformat
    from nbclient import NotebookClient

    chapter, out = job
    source = ROOT / chapter
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(source.parent)}})
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except Exception as exc:  # the executed part is still written, and the error reported
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    target = Path(out) / chapter
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return chapter, time.perf_counter() - start, error


def run(args: argparse.Namespace) -> int:
    os.environ.update(PINNED_ENV)
    for assignment in args.env:
        key, _, value = assignment.partition("=")
        if not key or not _:
            raise SystemExit(f"error: --env takes KEY=VALUE, got {assignment!r}")
        os.environ[key] = value
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "env.json").write_text(json.dumps(dict(a.partition("=")[::2] for a in args.env), indent=1))
    selected = [str(c) for c in (args.chapters or chapters())]
    failed = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for chapter, seconds, error in pool.map(_execute, [(c, str(out)) for c in selected]):
            print(f"{chapter}: {seconds:.0f} s{'  ERROR ' + error if error else ''}", flush=True)
            failed += bool(error)
    return 1 if failed else 0


def compare(args: argparse.Namespace) -> int:
    from nbval_numeric import ToleranceTable, compare_notebooks

    table = ToleranceTable.load()
    report = {}
    for run_dir in map(Path, args.runs):
        env = json.loads((run_dir / "env.json").read_text()) if (run_dir / "env.json").exists() else {}
        label = " ".join(f"{k}={v}" for k, v in env.items()) or run_dir.name
        for executed in sorted(run_dir.rglob("*.ipynb")):
            chapter = str(executed.relative_to(run_dir))
            result = compare_notebooks(ROOT / chapter, executed, table.for_chapter(chapter, measuring=True))
            report.setdefault(chapter, {})[label] = result
    for chapter, by_run in report.items():
        print(chapter)
        for label, result in by_run.items():
            spread = ", ".join(f"{name} {value:.3g}" for name, value in sorted(result["spread"].items())) or "-"
            verdict = "pass" if not result["failures"] else f"FAIL in cells {sorted(result['failures'])}"
            print(f"  {label:<40} max |Δ| by class: {spread};  {verdict}")
            for cell, why in sorted(result["failures"].items()):
                print(f"      cell {cell}: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True))
    return 1 if any(r["failures"] for by_run in report.values() for r in by_run.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute chapters under a simulated CPU into --out")
    p_run.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p_run.add_argument("--out", required=True)
    p_run.add_argument("--jobs", type=int, default=2)
    p_run.add_argument("chapters", nargs="*", type=Path)
    p_run.set_defaults(func=run)
    p_cmp = sub.add_parser("compare", help="set executed copies against the stored outputs")
    p_cmp.add_argument("runs", nargs="+")
    p_cmp.add_argument("--json")
    p_cmp.set_defaults(func=compare)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
