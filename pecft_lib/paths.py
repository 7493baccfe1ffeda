"""Where the library looks for committed artifacts and writes downloads."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Folder for downloads: ``$PECFT_CACHE`` if set, else ``data/cache`` of the repository (git-ignored)."""
    return Path(os.environ.get("PECFT_CACHE", REPO_ROOT / "data" / "cache"))
