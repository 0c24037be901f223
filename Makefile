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
	$(PY) scripts/ui_assets.py
	touch $(INSTALLED)

demo: $(INSTALLED)
	PATH=$(VENV)/bin:$$PATH $(PY) examples/demo.py

# First the layers (pyproject.toml's [tool.importlinter]), then the tests. They start a
# throw-away PostgreSQL of their own (tests/postgres.py); `install` puts the Debian postgresql
# package in when initdb is missing and we are root with apt-get (scripts/chromium.sh, Debian's
# chromium for the UI tests in tests/ui). The Ray tests (tests/compute) share
# one worker (--dist loadgroup), so that the machine holds one Ray head at a time.
test: $(INSTALLED)
	$(VENV)/bin/lint-imports
	scripts/postgres.sh install
	scripts/chromium.sh install
	$(PY) -m pytest -q -n 3 --dist loadgroup

bench: $(INSTALLED)
	$(PY) benchmarks/logging.py
	$(PY) benchmarks/tensorboard.py
	$(PY) benchmarks/jobs.py
	$(PY) benchmarks/tb_import.py
	$(PY) benchmarks/server.py
	$(PY) benchmarks/ray_jobs.py
	$(PY) benchmarks/ui.py
	$(PY) benchmarks/sweeps.py

clean:
	rm -rf $(VENV) .pytest_cache
