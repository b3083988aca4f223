# One entry point: setup, book, test, run, lab. Every target creates or refreshes .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup book test run list lab bench clean lock

setup: $(STAMP)

# The environment is rebuilt when pyproject.toml or constraints.txt changes. constraints.txt pins
# every package to the versions the suite was last run with (reproducible, and no resolver
# backtracking into ancient source releases); `make lock` refreshes it from a working .venv.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" -c constraints.txt
	@touch $(STAMP)

book: setup
	$(PY) -m robustbook book --profile quick

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadgroup --durations=15

list: setup
	$(PY) -m robustbook list

# make run CHAPTER=attacks PROFILE=smoke ARGS="-p epochs 2"
run: setup
	$(PY) -m robustbook run $(CHAPTER) --profile $(or $(PROFILE),quick) $(ARGS)

lab: setup
	$(VENV)/bin/jupyter lab book/

bench: setup
	OMP_NUM_THREADS=1 $(PY) benchmarks/pgd_cost.py

clean:
	rm -rf _build

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v "^-e" > constraints.txt
