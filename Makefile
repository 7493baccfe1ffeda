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

.PHONY: help setup data book test unit-and-nbval check-notebooks book-check outputs clean

help:
	@echo "make book   execute every chapter (quick profile) and build the HTML book in _build/html"
	@echo "make test   unit tests + nbval over every chapter + book build (no execution, warnings are errors)"
	@echo "make outputs  re-execute the chapters in place (refresh their stored outputs)"

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	@touch $@

data:
	@bash tools/install_data.sh

book: setup
	$(BIN)/python tools/build_book.py --execute

test: setup check-notebooks unit-and-nbval book-check

check-notebooks:
	$(BIN)/nbstripout --verify --keep-output --keep-count $$(find book -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*')

unit-and-nbval:
	$(BIN)/python -m pytest -n 2 --dist loadfile tests book

book-check:
	$(BIN)/python tools/build_book.py --no-execute

outputs: setup
	$(BIN)/python tools/execute_chapters.py

clean:
	rm -rf _build
