# Everything bootstraps into a project-local virtual environment from nothing:
# a fresh machine needs only Python 3.11 with pip.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed
# Benchmark-only tools (snakemake) live in their own environment: their pins
# (SQLAlchemy < 2.1, packaging < 26) conflict with the project's (requirements/bench.in).
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install browser postgis slurm test lint typecheck demo lock clean

install: $(STAMP) $(BENCH_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Re-sync whenever the lock or the project metadata changes.
$(STAMP): requirements/lock.txt pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

$(BENCH_STAMP): requirements/bench-lock.txt | $(BIN)/uv
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(BENCH_VENV)
	$(BIN)/uv pip sync --quiet --python $(BENCH_VENV)/bin/python requirements/bench-lock.txt
	touch $(BENCH_STAMP)

lint: install
	$(BIN)/ruff check plugins tests bench dags
	$(BIN)/python -m proseo.cli.main mission validate mission_configs/*.yaml

# The core packages (no Airflow) are type-checked with mypy (settings in pyproject.toml).
CORE := missions rules planning catalog wrapper storage interfaces
typecheck: install
	$(BIN)/mypy $(addprefix plugins/proseo/,$(CORE)) plugins/proseo/settings.py plugins/proseo/errors.py plugins/proseo/text.py

# Debian's Chromium for the browser tests (tests/ui); nothing downloads a browser.
browser:
	bash tests/ui/install_chromium.sh

# Debian's PostGIS for the local PostgreSQL: footprints (migration 0009 creates the extension).
postgis:
	bash tests/catalog/install_postgis.sh

# Debian's Slurm (slurmctld, slurmd, client commands) and MUNGE for the Slurm backend's tests
# (tests/execution/test_slurm_*.py start their own single-node cluster: proseo.devtools.slurm).
slurm:
	bash tests/execution/install_slurm.sh

# Outside tests/e2e the tests run on two workers (pytest-xdist, one per core), each test file
# on one worker (--dist loadfile: module fixtures are built once, as in a serial run). The e2e
# tests each drive a whole Airflow standalone: they run after, one at a time.
TEST_WORKERS ?= 2
test: lint typecheck browser postgis slurm
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/e2e $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m proseo.demo

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
		--generate-hashes --quiet -o requirements/lock.txt
	$(BIN)/uv pip compile requirements/bench.in --python-version 3.11 \
		--generate-hashes --quiet -o requirements/bench-lock.txt

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache
