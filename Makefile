# netguard: `make demo` sets up and scans the bundled examples; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.netguard-installed
export BC_SKIP_MAPPING := TRUE

.PHONY: demo test lint format bench docs clean

INSTALL_LOG := $(VENV)/install.log

# pip's and setuptools' output goes to $(INSTALL_LOG); on failure its end is shown.
# One resolver run for everything: installing tools one by one breaks checkov's pins.
$(STAMP): pyproject.toml
	@echo "== installing netguard and its pinned engines into $(VENV)... (log: $(INSTALL_LOG))"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip \
	  && $(BIN)/python -m pip install -e ".[dev,spark]" \
	  && $(BIN)/python -m pip check; } > $(INSTALL_LOG) 2>&1 \
	  || { echo "== install failed; the end of $(INSTALL_LOG):"; tail -n 25 $(INSTALL_LOG); exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	@echo "== netguard scan examples/ (exit 1 means findings, as intended here)"
	@$(BIN)/netguard scan examples/ || test $$? -eq 1

test: $(STAMP)
	$(BIN)/ruff check src checks tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src checks tests
	$(BIN)/ruff format --check src checks tests

format: $(STAMP)
	$(BIN)/ruff format src checks tests
	$(BIN)/ruff check --fix src checks tests

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

docs: $(STAMP)
	$(BIN)/python -m netguard.docs > docs/controls.md

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/replay.py --jobs 2 --guarded 0.5 --goal 0.6
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/org_replay.py
	$(BIN)/python bench/replay_memory.py
	$(BIN)/python bench/spark.py
