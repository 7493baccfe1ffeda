"""Build the HTML book into _build/html.

--execute     run every chapter while building (what `make book` does: the pages show fresh outputs)
--no-execute  render the stored outputs, which nbval has just checked (what `make test` does)

Both build with warnings as errors (-W) and raise on a failing cell (`raise_on_error` in _config.yml).
The variant config is written under _build/ so that _config.yml stays the single source.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--execute", action="store_true")
    mode.add_argument("--no-execute", action="store_true")
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force" if args.execute else "off"
    # Jupyter Book resolves local extension folders against the config file's folder, which here is _build/
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in extensions.items():
        extensions[name] = str(ROOT / folder)
    variant = ROOT / "_build" / f"_config.{'execute' if args.execute else 'no-execute'}.yml"
    variant.parent.mkdir(exist_ok=True)
    variant.write_text(yaml.safe_dump(config, sort_keys=False))
    command = ["jb", "build", str(ROOT), "--config", str(variant), "--all", "-W", "--keep-going"]
    print("+", " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
