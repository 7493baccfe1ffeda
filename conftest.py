"""Repository-wide pytest set-up: nbval compares CPU-dependent numbers within measured tolerances
(tests/nbval_numeric.py, book/tolerances.yml)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))  # `tests` itself is taken by a site package

pytest_plugins = ["nbval_numeric"]
