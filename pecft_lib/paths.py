"""Where the library finds its own data and where it writes downloads.

* **Package data** (:func:`package_data`): what the library needs at run time ships inside the package —
  ``pecft-vit-tiny``'s weights, model card and reports, and the ImageNet-R split — so a wheel installed anywhere
  has them (``importlib.resources``).
* **Cache** (:func:`cache_dir`): downloads and extracted files (datasets, hub weights, all-MiniLM-L6-v2).
  ``$PECFT_CACHE`` if set; else, in a source checkout, the repository's git-ignored ``data/cache/`` (where
  ``make setup`` puts them); else the per-user cache folder of ``platformdirs`` (``~/.cache/pecft`` on Linux).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from platformdirs import user_cache_dir

PACKAGE_ROOT = Path(__file__).resolve().parent
# The repository when the package runs from a checkout (editable install, notebooks); None for an installed wheel.
REPO_ROOT: Path | None = PACKAGE_ROOT.parent if (PACKAGE_ROOT.parent / "pyproject.toml").is_file() else None


def package_data(*parts: str) -> Path:
    """A file or folder of the package's ``data/`` (e.g. ``package_data("pecft-vit-tiny", "model.safetensors")``)."""
    return Path(str(files("pecft_lib").joinpath("data", *parts)))


def cache_dir() -> Path:
    """Folder for downloads: ``$PECFT_CACHE``, else ``data/cache`` of a source checkout, else the user's cache."""
    if os.environ.get("PECFT_CACHE"):
        return Path(os.environ["PECFT_CACHE"])
    if REPO_ROOT is not None:
        return REPO_ROOT / "data" / "cache"
    return Path(user_cache_dir("pecft", appauthor=False))
