# Two commands (see README):  make book  |  make test
# Both set up everything they need on a fresh machine: .venv, the pinned packages, the offline datasets.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(abspath $(VENV))/bin

# The pinned environment of every executed chapter: nbval, the book build and the refresh script must
# see the same profile, thread count and silent progress bars.
export PATH            := $(BIN):$(PATH)
export PECFT_PROFILE   ?= quick
export TQDM_DISABLE    := 1
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYTHONHASHSEED  := 0
export HF_HUB_OFFLINE  := 1
unexport MPLBACKEND

.PHONY: help setup data book test unit-and-nbval check-notebooks book-check browser-check outputs spread medium clean

help:
	@echo "make book   execute every chapter (quick profile) and build the HTML book in _build/html"
	@echo "make test   unit tests + nbval over every chapter + book build (no execution, warnings are errors)"
	@echo "            + every page of the built book opened in headless Chromium (make browser-check)"
	@echo "make outputs  re-execute the chapters in place (refresh their stored outputs)"
	@echo "make spread   measure how far the chapters' numbers move under three simulated CPUs (book/tolerances.yml)"
	@echo "make medium   produce the stored records of the medium profile (data/records/medium/; resumable, in parts)"

setup: $(VENV)/.installed data

# A first install needs about 8 GiB (see tools/check_free_space.sh); checked before pip starts, not after it fails.
SETUP_MIN_FREE_GIB ?= 9

$(VENV)/.installed: pyproject.toml
	@ls -d $(VENV)/lib/python*/site-packages/torch >/dev/null 2>&1 || \
	  bash tools/check_free_space.sh $(SETUP_MIN_FREE_GIB) . $${TMPDIR:-/tmp}
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	@touch $@

data:
	@bash tools/install_data.sh

# The pages load MathJax from _static/mathjax/ (mathjax_path in _config.yml), not from a CDN: after each build the
# copy that tools/install_data.sh fetched (npm package, sha256-checked) goes into the built book.
MATHJAX_DIR := $(or $(PECFT_CACHE),data/cache)/mathjax
define check_mathjax
@test -f $(MATHJAX_DIR)/tex-mml-chtml.js || { echo "error: MathJax is missing ($(MATHJAX_DIR)/tex-mml-chtml.js); run \`make setup\` (tools/install_data.sh fetches it)" >&2; exit 1; }
endef
define copy_mathjax
rm -rf _build/html/_static/mathjax && cp -r $(MATHJAX_DIR) _build/html/_static/mathjax
endef

book: setup
	$(check_mathjax)
	$(BIN)/python tools/build_book.py --execute
	$(copy_mathjax)

test: setup check-notebooks unit-and-nbval book-check browser-check

check-notebooks:
	$(BIN)/nbstripout --verify --keep-output --keep-count $$(find book -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*')

# The unit tests and nbval run on a simulated other CPU: the stored outputs are written on the machine's own float
# path (`make outputs`), while PyTorch's kernels without AVX2/AVX-512 and oneDNN limited to SSE4.1 round differently
# from any real machine's default, so each `make test` checks the chapters against another path than the one that
# wrote them, within the tolerances of book/tolerances.yml. The pair is none of the three CPUs `make spread` measured
# the tolerances on, so passing it is evidence, not a tautology. NBVAL_SIMULATED_CPU= checks natively.
NBVAL_SIMULATED_CPU ?= ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41

unit-and-nbval:
	env $(NBVAL_SIMULATED_CPU) $(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/browser tests book

book-check:
	$(check_mathjax)
	$(BIN)/python tools/build_book.py --no-execute
	$(copy_mathjax)

# Needs the built book (book-check or book): opens every page of _toc.yml in headless Chromium, offline; a full-page
# screenshot of each goes to _build/screenshots/.
browser-check:
	$(BIN)/python -m pytest -p no:xdist -o addopts="" -v -s tests/browser

outputs: setup
	$(BIN)/python tools/execute_chapters.py

# How far the chapters' numbers move on other CPUs (about 25 minutes per simulated CPU on 2 cores): executes every
# chapter under three simulated CPUs into _build/spread/ and prints, per chapter and tolerance class, the largest
# change against the stored outputs; the evidence behind book/tolerances.yml.
SPREAD_CPUS := mkl:MKL_CBWR=COMPATIBLE aten:ATEN_CPU_CAPABILITY=default onednn:ONEDNN_MAX_CPU_ISA=SSE41
spread: setup
	@for cpu in $(SPREAD_CPUS); do \
	  $(BIN)/python tools/output_spread.py run --env $${cpu#*:} --out _build/spread/$${cpu%%:*} || exit 1; done
	$(BIN)/python tools/output_spread.py compare $(addprefix _build/spread/,$(foreach c,$(SPREAD_CPUS),$(firstword $(subst :, ,$(c))))) --json _build/spread/spread.json

# The stored records of the medium profile (configs/comparison.yaml, medium section) that the chapters load: runs only
# what data/records/medium/ does not hold yet, so it can be run in parts (stop it any time, run it again to go on).
medium: setup
	$(BIN)/pecft comparison --profile medium

clean:
	rm -rf _build
