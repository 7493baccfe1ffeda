#!/usr/bin/env bash
# Install the offline datasets the quick profile reads: Debian's dataset-fashion-mnist and wordnet-base.
# Needs root on Debian/Ubuntu; elsewhere it says what the loaders will do instead and exits 0.
set -euo pipefail
packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)
[ ${#packages[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian packages: ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
else
    echo "note: Debian packages ${packages[*]} are not installed and cannot be installed here (needs apt-get as root)."
    echo "      The loaders will download Fashion-MNIST with torchvision and WordNet with NLTK instead (needs internet)."
fi
