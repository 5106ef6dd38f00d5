# One entry point for people and CI. Everything it needs comes from the package registries:
# uv is installed into .tools/, the project and its locked dependencies into .venv/.
PYTHON ?= python3
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: help install test unit-test integration-test sync clean

help:
	@echo "make sync   sync every stream into a local DuckDB file (your org with KUSTOMER_API_TOKEN, else the bundled sandbox)"
	@echo "make test   run every test (unit + integration)"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	@touch $@

install: .venv/.installed

test: install
	.venv/bin/python -m pytest -q -p no:cacheprovider unit_tests integration_tests

unit-test: install
	.venv/bin/python -m pytest -q unit_tests

integration-test: install
	.venv/bin/python -m pytest -q integration_tests

sync: install
	.venv/bin/python scripts/sync.py

clean:
	rm -rf .venv .tools .pytest_cache build dist
