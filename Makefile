# Two commands for a newcomer: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A second, small environment with tflite-runtime 2.14 (numpy<2), the oldest runtime we support.
COMPAT ?= .venv-tflite214
DATASET ?= digits
ART ?= artifacts
PYTEST_ARGS ?=
# `make verify-arm64`: the Debian release emulated (bookworm: Python 3.11; trixie: 3.13).
SUITE ?= bookworm
# Data: HWR_DATA_DIR if set, else ../shared/data when it exists (edge.datasets.data_dir()).
ifneq ($(wildcard ../shared/data),)
export HWR_DATA_DIR ?= $(abspath ../shared/data)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup compat demo test lint format bench verify-arm64 clean help

help:
	@echo "make demo    set up, train both models on DATASET=$(DATASET), export every variant, bench"
	@echo "make test    set up and run the test suite"
	@echo "make bench   MNIST targets: train if needed, export, bench (writes $(ART)/bench-mnist.json)"
	@echo "make lint    ruff check + format check"
	@echo "make verify-arm64   optional, slow (root, 30-60 min): the edge runtime in emulated arm64 Debian SUITE=$(SUITE), predictions compared with this host"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[host,edge,dev]'
	@touch $@

compat: $(COMPAT)/.installed

# tflite-runtime has no wheels past Python 3.11: where it cannot install, its tests skip.
$(COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q "tflite-runtime==2.14.0" "numpy>=1.24,<2" \
		"opencv-python-headless>=4.6,<4.12" || echo "tflite-runtime 2.14 unavailable here"
	$(COMPAT)/bin/python -m pip install -q --no-deps -e .
	@touch $@

demo: setup
	$(BIN)/train-host train --dataset $(DATASET) --model cnn --out $(ART)/$(DATASET)-cnn
	$(BIN)/train-host export $(ART)/$(DATASET)-cnn
	$(BIN)/train-host train --dataset $(DATASET) --model pca-mlp --out $(ART)/$(DATASET)-pca-mlp
	$(BIN)/train-host export $(ART)/$(DATASET)-pca-mlp
	$(BIN)/edge bench $(ART)/$(DATASET)-cnn/*.tflite $(ART)/$(DATASET)-pca-mlp/*.tflite \
		--json $(ART)/$(DATASET)-bench.json --csv $(ART)/$(DATASET)-bench.csv

test: setup compat
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check edge train_host tests
	$(BIN)/ruff format --check edge train_host tests

format: setup
	$(BIN)/ruff format edge train_host tests

bench: setup
	@for model in cnn pca-mlp; do \
		run=$(ART)/mnist-$$model; \
		test -f $$run/train.json || $(BIN)/train-host train --dataset mnist --model $$model --out $$run || exit 1; \
		test -f $$run/int8.tflite || $(BIN)/train-host export $$run || exit 1; \
	done
	$(BIN)/edge bench $(ART)/mnist-cnn/*.tflite $(ART)/mnist-pca-mlp/*.tflite --dataset mnist \
		--json $(ART)/bench-mnist.json --csv $(ART)/bench-mnist.csv

# Optional and slow, never in CI: needs root, debootstrap and qemu-user-static (installed if
# missing); caches the arm64 root file system in .cache/arm64-$(SUITE)/. See scripts/verify_arm64.sh.
verify-arm64: setup compat
	SUITE=$(SUITE) HOST_PYTHON=$(abspath $(BIN))/python bash scripts/verify_arm64.sh

clean:
	rm -rf $(ART) .pytest_cache
