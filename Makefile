# The single entry point: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch this project is developed and tested with.
TORCH_PIN ?= torch==2.13.0
# On Linux without a CUDA GPU (no nvidia-smi), torch's CPU build comes from PyTorch's own index of
# CPU-only wheels (the default index's Linux torch brings gigabytes of CUDA libraries). Where that
# index cannot be reached within TORCH_INDEX_TIMEOUT seconds, setup says so in one line and takes
# torch from the default index. TORCH_CPU_INDEX= (empty) always uses the default index.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_TIMEOUT ?= 10
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup widgets7 system-deps lab test test-all notebooks check-notebooks grade bench bench-models clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# .venv with pip and torch; then the learners' packages (.lab) or the maintainers' (.installed).
$(VENV)/.torch: Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_CPU_INDEX)" ] && [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then \
	  if timeout $(TORCH_INDEX_TIMEOUT) $(PY) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=float(sys.argv[2]))" \
	       "$(TORCH_CPU_INDEX)" "$(TORCH_INDEX_TIMEOUT)" 2>/dev/null; then \
	    echo "setup: no CUDA GPU: torch's CPU build from $(TORCH_CPU_INDEX)"; \
	    $(PY) -m pip install --quiet --index-url "$(TORCH_CPU_INDEX)" "$(TORCH_PIN)"; \
	  else \
	    echo "setup: $(TORCH_CPU_INDEX) cannot be reached: torch from the default index instead (on Linux that build may bring CUDA libraries)"; \
	    $(PY) -m pip install --quiet "$(TORCH_PIN)"; \
	  fi; \
	else \
	  $(PY) -m pip install --quiet "$(TORCH_PIN)"; \
	fi
	touch $@

$(VENV)/.lab: $(VENV)/.torch pyproject.toml
	$(PY) -m pip install --quiet -e ".[lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed  ## create .venv with everything the course and its tests need (the dev extras)

# Colab's ipywidgets 7.7.1 and its kernel, beside .venv (which keeps ipywidgets 8): the test
# kernel of tests/notebooks/test_colab_widgets7.py gets this folder first on its PYTHONPATH.
WIDGETS7 := $(VENV)/colab-widgets7
$(WIDGETS7)/.installed: tests/notebooks/colab_widgets7.txt $(VENV)/.installed
	rm -rf $(WIDGETS7)
	$(PY) -m pip install --quiet --no-deps --target $(WIDGETS7) -r tests/notebooks/colab_widgets7.txt
	touch $@

widgets7: $(WIDGETS7)/.installed  ## install Colab's widget stack (ipywidgets 7.7.1) for the tests

system-deps:  ## install bubblewrap (grading sandbox) and chromium (browser test) when apt-get is available and we are root
	@bash .ci/system-deps

# Jupyter refuses to run as root without being told (containers, cloud shells).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# More options for `jupyter lab`: make lab LAB_FLAGS="--port 8890 --no-browser"
LAB_FLAGS ?=

lab: $(VENV)/.lab  ## install the learners' packages (.[lab]) into .venv and open the course in JupyterLab
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_FLAGS) notebooks/

# Both tiers run on one pytest worker more than the machine has cores (3 on 2 cores): many
# tests wait on a sandbox, a kernel or a browser starting, and the extra worker fills that time
# (on 2 cores, `make test` in 363 s instead of 409 s: bench/RESULTS.md). worksteal keeps every
# worker busy when a few long tests come last. `make test WORKERS=2` chooses another number.
WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")
PYTEST = GPT2COURSE_FAST=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n $(WORKERS) --dist worksteal -q

test: setup widgets7 system-deps  ## the maintainers' tier, before every commit: all but the tests marked slow
	$(PYTEST) -m "not slow" $(ARGS)

test-all: setup widgets7 system-deps  ## every test: all salts, every catalogue round through the sandbox (CI runs this)
	$(PYTEST) $(ARGS)

notebooks: setup  ## regenerate notebooks/ from solutions/ with nbgrader
	$(PY) -m grader build

check-notebooks: setup  ## fail when notebooks/ is stale
	$(PY) -m grader build --check

grade: setup  ## grade one notebook: make grade NB=notebooks/00_welcome.ipynb
	$(PY) -m grader check $(NB)

bench: setup system-deps  ## time grading a class of 60 (notebooks 03, 07): a sandbox each vs warm workers, 1 and 2 jobs (appends to bench/RESULTS.md)
	$(PY) -m grader bench --jobs 2

bench-models: setup  ## training speed vs Hugging Face, the KV-cache speed-up and the cpu preset run (appends to bench/RESULTS.md)
	$(PY) bench/train_speed.py
	$(PY) bench/kv_cache.py
	$(PY) bench/train_run.py

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache build *.egg-info
