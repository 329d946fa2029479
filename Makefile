# Two entry points, each doing all set-up on a fresh machine:
#   make demo   train a char-level LSTM on Shakespeare (bounded time), then print samples
#   make test   run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_OUT ?= runs/demo
DEMO_MINUTES ?= 4
# Extra pip flags for torch. On this project's machines torch==2.13.0 resolves to the CPU wheel;
# elsewhere on Linux, PyPI's default build carries CUDA (GBs). For the CPU build there, use
#   make demo TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_FLAGS ?=

.PHONY: venv install demo test test-slow test-all bench clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@touch $@

venv: $(VENV)/.created

$(VENV)/.installed: $(VENV)/.created pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt $(TORCH_PIP_FLAGS) torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[test,export,serve]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/rnnkit train charlm --data shakespeare --config configs/charlm-demo.yaml \
		--max-time $(DEMO_MINUTES) --out $(DEMO_OUT) --overwrite
	$(VENV)/bin/rnnkit sample $(DEMO_OUT) --prime "Romeo." --length 600 --temperature 0.8 --seed 0

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q -m ''

bench: install
	$(PY) benchmarks/charlm.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
