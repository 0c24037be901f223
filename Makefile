# The two commands of the README: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	@demo_dir=$$(mktemp -d) && cd $$demo_dir && echo "Demo workspace: $$demo_dir/.runhistory" && \
	run_ref=$$($(PY) $(CURDIR)/examples/scenario2_sweep.py | tail -n 1) && \
	$(VENV)/bin/runhistory runs show $$run_ref

test: $(INSTALLED)
	$(PY) -m pytest -q

bench: $(INSTALLED)
	$(PY) benchmarks/logging.py

clean:
	rm -rf $(VENV) .pytest_cache
