# One entry point: setup, book, test, run, lab. Every target creates or refreshes .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup book test browser fashion-mnist run list lab bench clean lock

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

# make book JOBS=3: chapters executed at once (default: one per core on up to 3 cores, one per two above; see CONTRIBUTING.md)
book: setup fashion-mnist
	$(PY) -m robustbook book --profile quick $(if $(JOBS),--jobs $(JOBS))

test: setup browser fashion-mnist
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadgroup --durations=15

# Debian's chromium, for tests/test_offline_book.py (the rendered pages opened offline in a real
# browser). Installed only where missing; where apt cannot install it (not root, not Debian) the
# browser checks skip with a message and everything else runs.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 || \
	  echo "note: could not install Debian's chromium (apt-get install chromium needs root); the offline browser checks in tests/test_offline_book.py will be skipped" >&2

# Debian's dataset-fashion-mnist (the real Fashion-MNIST the CIFS chapter trains on offline, read from
# /usr/share/datasets/fashion-mnist). Installed only where missing; where apt cannot install it, the chapter
# needs `python data_scripts/fashion_mnist.py` (the official download) instead, and says so.
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 || \
	  echo "note: could not install Debian's dataset-fashion-mnist (needs root on Debian); run $(PY) data_scripts/fashion_mnist.py to download Fashion-MNIST for the CIFS chapter" >&2

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
