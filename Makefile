# Two entry points set everything up from nothing (Python 3.11, pip, gcc, make):
#   make demo   - the whole job on built-in simulated data
#   make test   - the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.base
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BASE):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 is a local CPU build here; anything else pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	touch $(BASE)

# The demo needs the package with its extras; the tests also need napari and the dev tools.
$(DEMO_STAMP): pyproject.toml $(BASE)
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml $(BASE)
	# --group (the dev tools) needs pip 25.1 or newer; the demo does not.
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,napari]" --group dev
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/blobsift demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/learning_curve.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/train_time.py
	$(BIN)/python benchmarks/detection.py

clean:
	rm -rf $(VENV) build .pytest_cache
