# kubeflow-jupyter — two commands: `make run` and `make test`.
#
# Everything is installed here, by these rules: the Python packages into .venv, the
# JupyterLab extension's npm packages into labextension/node_modules, configurable-http-proxy
# into .cache/node, and (as root, when missing) Debian's chromium for the browser tests.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

LABEXT     := labextension
LABEXT_OUT := kubeflow_jupyter/labextension/package.json
LABEXT_SRC := $(LABEXT)/package.json $(LABEXT)/package-lock.json $(LABEXT)/tsconfig.json \
              $(wildcard $(LABEXT)/src/*.ts $(LABEXT)/src/*.tsx $(LABEXT)/style/*)
CHP        := .cache/node/node_modules/.bin/configurable-http-proxy
CHROMIUM   := /usr/bin/chromium

SEED_JOB := example-job

.PHONY: run seed test lint bench venv labextension proxy chromium wheel clean

## make run: the seed's TFJob on this machine, then the whole stack (model server + JupyterHub)
run: labextension proxy seed
	$(PY) -m jupyterhub_config.run_local

## make seed: only the seed's TFJob (master, worker, 2 PS); prints the master's results
seed: venv
	@$(BIN)/kubeflow-jupyter delete $(SEED_JOB) >/dev/null 2>&1 || true
	$(BIN)/kubeflow-jupyter submit examples/tfjob-legacy.yaml \
		--command "python examples/tf_sample/tf_sample.py" --wait --logs
	@# Done with it: free the name for the quickstart notebook, which submits the same job.
	@$(BIN)/kubeflow-jupyter delete $(SEED_JOB)

## make test: install everything the tests need, lint, then run them
test: venv labextension proxy chromium lint
	$(PY) -m pytest

## make lint: ruff (lint + format) and mypy on the Python; eslint, prettier, stylelint on the lab extension
lint: venv labextension
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd $(LABEXT) && npm run --silent lint:check

bench: venv labextension chromium
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# `jupyter-builder develop` links the venv's copy of the lab extension to the build
	@# output; an editable reinstall would write its shared-data through that link.
	test ! -L $(VENV)/share/jupyter/labextensions/kubeflow-jupyter || rm $(VENV)/share/jupyter/labextensions/kubeflow-jupyter
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The prebuilt JupyterLab extension (shipped in the wheel; pip install needs no node).
# jupyter-builder is a command of the venv (JupyterLab's own builder), hence the PATH.
labextension: $(LABEXT_OUT)

$(LABEXT_OUT): $(STAMP) $(LABEXT_SRC)
	cd $(LABEXT) && npm ci --no-audit --no-fund --loglevel=error \
		&& PATH="$(CURDIR)/$(BIN):$$PATH" npm run build
	$(BIN)/jupyter-builder develop --overwrite .
	touch $@

proxy: $(CHP)

$(CHP):
	npm install --prefix .cache/node --no-audit --no-fund --loglevel=error configurable-http-proxy@4.6.3

chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

wheel: labextension
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist .pytest_cache kubeflow_jupyter/labextension $(LABEXT)/node_modules $(LABEXT)/lib
