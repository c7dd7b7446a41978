# The two commands a newcomer needs: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STATE_DIR := .sandbox
NOTEBOOK_PORT ?= 8888
# The JupyterLab extension: TypeScript in labextension/, built into mlspace_s3magic/labextension/.
LAB_BUILT := mlspace_s3magic/labextension/static/style.js
LAB_SOURCES := $(wildcard labextension/package.json labextension/yarn.lock labextension/tsconfig.json \
	labextension/src/*.ts labextension/style/*)
# The kernels' shell commands (`!s3access ...`) find the project's tools first.
export PATH := $(abspath $(BIN)):$(PATH)
# JupyterLab refuses to run as root unless told to; CI and these machines run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install demo test lint typecheck unit notebooks chromium clean lambda-zip

# pip builds the JupyterLab extension (hatch-jupyter-builder runs jlpm in labextension/) and enables both
# extensions; `jupyter-builder develop` then links the built folder, so a rebuild shows without reinstalling.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/jupyter-builder develop --overwrite .
	touch $@

install: $(INSTALLED) $(LAB_BUILT)

# Rebuilt only when its sources change after the install built it.
$(LAB_BUILT): $(LAB_SOURCES) | $(INSTALLED)
	cd labextension && ../$(BIN)/jlpm install --immutable && ../$(BIN)/jlpm build:prod
	touch $@

# The browser tests drive Debian's Chromium (never a browser a test tool downloads); CI machines start
# without it.
chromium:
	@command -v chromium >/dev/null || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The sandbox, its admin endpoint (requests kept in $(STATE_DIR)/admin.db) and JupyterLab as alice@demo;
# the launcher prints the line that acts as the admin in another shell.
demo: install
	$(BIN)/s3access sandbox run --as alice@demo --admin-endpoint --state-dir $(STATE_DIR) -- \
		$(BIN)/jupyter lab --no-browser $(ALLOW_ROOT) --ip 127.0.0.1 --port $(NOTEBOOK_PORT) \
		--ServerApp.root_dir=notebooks --LabApp.news_url=None

# The deploy templates and the notebook lifecycle script (when it is there).
LIFECYCLE_SCRIPTS := $(wildcard deploy/notebook-lifecycle/*.sh)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint deploy/*.yaml
	$(if $(LIFECYCLE_SCRIPTS),$(BIN)/shellcheck $(LIFECYCLE_SCRIPTS))

typecheck: $(INSTALLED)
	$(BIN)/mypy

unit: install chromium
	$(BIN)/pytest -n 2 tests

# The example notebooks run against a fresh sandbox and admin endpoint, acting as alice@demo, with their
# outputs compared; the request outbox is a scratch folder too, so nothing left from another run shows.
notebooks: install
	scratch=$$(mktemp -d) && \
	XDG_STATE_HOME=$$scratch/state $(BIN)/s3access sandbox run --as alice@demo --admin-endpoint \
		--state-dir $$scratch/sandbox -- \
		$(BIN)/pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider; \
	status=$$?; rm -rf $$scratch; exit $$status

test: lint typecheck unit notebooks

# The admin endpoint's deployment package for Lambda (the runtime deploy/endpoint.yaml names, Linux x86_64):
# wheels of its dependencies at the versions installed here, the package without its Jupyter parts; prints
# its size. Upload it and deploy the stack as deploy/README.md says.
lambda-zip: $(INSTALLED)
	$(BIN)/python deploy/build_lambda_zip.py --out build/lambda.zip

clean:
	rm -rf $(VENV) $(STATE_DIR) .pytest_cache .mypy_cache .ruff_cache build \
		labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo mlspace_s3magic/labextension
