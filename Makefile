# Two entry points set everything up from nothing (Python 3.11, pip, gcc, make):
#   make demo   - the whole job on built-in simulated data
#   make test   - the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: 2.13.0 is a local CPU build here; anything else pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,napari]" --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/blobsift demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
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
