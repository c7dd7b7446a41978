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

.PHONY: install demo admin test lint typecheck unit notebooks chromium clean lambda-zip

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

# The sandbox, its admin endpoint (requests in $(STATE_DIR)/admin.db, emptied at each start as the sandbox is
# seeded anew) and JupyterLab as alice@demo; the launcher prints the lines that act as the admin in another
# shell. JupyterLab gets settings of the demo's own (never the user's): its "get Jupyter news?" prompt would
# cover our notifications. One Ctrl-C stops it all: answer_yes skips Jupyter's "Shut down?" question.
DEMO_LAB_SETTINGS := $(STATE_DIR)/lab-settings
demo: install
	mkdir -p $(DEMO_LAB_SETTINGS)
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}' \
		>$(DEMO_LAB_SETTINGS)/overrides.json
	@echo 'As the admin, from another shell in this folder: make admin ARGS="show ID" (requests, show,' \
		'approve, deny, apply, revoke, audit).'
	$(BIN)/s3access sandbox run --as alice@demo --admin-endpoint --state-dir $(STATE_DIR) -- \
		$(BIN)/jupyter lab --no-browser $(ALLOW_ROOT) --ip 127.0.0.1 --port $(NOTEBOOK_PORT) \
		--ServerApp.root_dir=notebooks --ServerApp.answer_yes=True --LabApp.news_url=None \
		--LabApp.app_settings_dir=$(abspath $(DEMO_LAB_SETTINGS))

# The admin's commands against the running demo, from any shell in this folder: `make admin` lists the
# requests, `make admin ARGS="show ID"` (approve, deny, apply, revoke, audit, ...) acts on one.
ARGS ?= requests
admin:
	@test -f $(STATE_DIR)/sandbox.json || \
		{ echo 'make admin acts in the running demo: start `make demo` first.' >&2; exit 1; }
	@exports=$$($(BIN)/s3access sandbox env --as admin --state-dir $(STATE_DIR)) && eval "$$exports" && \
		$(BIN)/s3access admin $(ARGS) --token-file $(STATE_DIR)/admin.token

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
