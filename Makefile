# One entry point for people and CI. Everything it needs comes from the package registries:
# uv is installed into .tools/, the project and its locked dependencies into .venv/.
PYTHON ?= python3
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: help install test unit-test integration-test soak sync live-check builder-bundle bench clean

help:
	@echo "make sync   sync every stream into a local DuckDB file (your org with KUSTOMER_API_TOKEN, else the bundled sandbox)"
	@echo "make test   run every test (unit + integration)"
	@echo "make soak   kill-and-resume and changes-during-sync over SOAK_SEEDS (default 25) random seeds"
	@echo "make bench  benchmark against the Singer tap-kustomer on the bundled sandbox (BENCH_ARGS=--modes=memory for the 1M-record memory run)"
	@echo "make live-check   your org (KUSTOMER_API_TOKEN): check, the first page of every stream, a schema drift table"
	@echo "make builder-bundle   dist/builder/manifest.yaml and components.py, to import into the Connector Builder"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	@touch $@

install: .venv/.installed

# Tests run on every core (pytest-xdist); each worker starts its own sandboxes on free ports.
PYTEST := .venv/bin/python -m pytest -q -p no:cacheprovider -n auto --dist worksteal

test: install
	$(PYTEST) unit_tests integration_tests

unit-test: install
	$(PYTEST) unit_tests

integration-test: install
	$(PYTEST) integration_tests

# The randomised reliability tests over many seeds (make test runs 3 of each).
SOAK_SEEDS ?= 25
soak: install
	SOAK_SEEDS=$(SOAK_SEEDS) $(PYTEST) integration_tests/test_kill_and_resume.py integration_tests/test_changes_during_sync.py

sync: install
	.venv/bin/python scripts/sync.py

# Before the first sync of a real org: check, then the first page of every stream, then schema drift.
live-check: install
	.venv/bin/python scripts/live_check.py

builder-bundle: install
	.venv/bin/python -m scripts.builder_bundle --out dist/builder

# The Singer tap gets its own venv with its own pins: it is the baseline, not a dependency.
.bench/tap-venv/.installed: $(UV) benchmarks/tap-requirements.txt
	$(UV) venv --quiet --clear --python $(PYTHON) .bench/tap-venv
	$(UV) pip install --quiet --python .bench/tap-venv/bin/python -r benchmarks/tap-requirements.txt
	@touch $@

bench: install .bench/tap-venv/.installed
	.venv/bin/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf .venv .tools .bench .pytest_cache build dist
