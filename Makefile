# kubeflow-jupyter — two commands: `make run`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test venv bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## make run: run the seed's TFJob (master, worker, 2 PS) on this machine and print the master's results
run: venv
	$(VENV)/bin/kubeflow-jupyter submit examples/tfjob-legacy.yaml \
		--command "python examples/tf_sample/tf_sample.py" --wait --logs

## make test: install everything the tests need into .venv, then run them
test: venv
	$(PY) -m pytest

bench: venv
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache
