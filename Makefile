# The two commands a newcomer needs: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STATE_DIR := .sandbox
NOTEBOOK_PORT ?= 8888
# The kernels' shell commands (`!s3access ...`) find the project's tools first.
export PATH := $(abspath $(BIN)):$(PATH)
# JupyterLab refuses to run as root unless told to; CI and these machines run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install demo test lint typecheck unit notebooks clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

# The sandbox, its admin endpoint (requests kept in $(STATE_DIR)/admin.db) and JupyterLab as alice@demo;
# the launcher prints the line that acts as the admin in another shell.
demo: $(INSTALLED)
	$(BIN)/s3access sandbox run --as alice@demo --admin-endpoint --state-dir $(STATE_DIR) -- \
		$(BIN)/jupyter lab --no-browser $(ALLOW_ROOT) --ip 127.0.0.1 --port $(NOTEBOOK_PORT) \
		--ServerApp.root_dir=notebooks --LabApp.news_url=None

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

unit: $(INSTALLED)
	$(BIN)/pytest tests

# The example notebooks run against a fresh sandbox and admin endpoint, acting as alice@demo, with their
# outputs compared.
notebooks: $(INSTALLED)
	$(BIN)/s3access sandbox run --as alice@demo --admin-endpoint --state-dir $$(mktemp -d) -- \
		$(BIN)/pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

test: lint typecheck unit notebooks

clean:
	rm -rf $(VENV) $(STATE_DIR) .pytest_cache .mypy_cache .ruff_cache
