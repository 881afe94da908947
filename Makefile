# Set-up and everyday commands. Every target installs what it needs into $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast check-wheel rtl-test lint install install-dev install-rtl clean corpus train train-lms milestone ship

# The kernels against the reference, then the shipped default model on its shipped clips.
demo: $(VENV)/.stamp-runtime
	$(VENV)/bin/int4rt selftest
	@echo "Transcribing the shipped clips (held-out synthetic voices) with the default model:"
	$(VENV)/bin/python examples/demo.py

test: install-rtl
	$(PY) -m ruff check .
	$(PY) -m pytest

# The quick core for everyday work (under two minutes): no oracle, thorough or slow tests.
test-fast: $(VENV)/.stamp-dev
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow and not oracle and not thorough"

# The RTL bench (hardware/): Icarus Verilog from Debian when missing, cocotb from the `rtl` extra.
rtl-test: install-rtl
	$(PY) -m pytest -m rtl tests/test_rtl.py

install-rtl: $(VENV)/.stamp-dev
	@command -v iverilog >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq iverilog; } \
	  || { echo "rtl-test: Icarus Verilog (iverilog, 11 or newer) is missing and could not be" \
	       "installed here; install it (Debian/Ubuntu: apt-get install iverilog) and rerun"; exit 1; }
	$(PY) -m pip install --quiet -e '.[rtl]'

lint: $(VENV)/.stamp-dev
	$(PY) -m ruff check .

# Training (docs/TRAINING.md): the corpus and runs live outside git.
CORPUS ?= /work/corpus
RUNS ?= /work/runs

corpus: $(VENV)/.stamp-dev
	$(PY) -m pip install --quiet -e '.[train]'
	nice -n 5 $(PY) -m int4rt_train.data --out $(CORPUS) --seed 0 --hours 110 --jobs 2

train: $(VENV)/.stamp-dev
	mkdir -p $(RUNS)/small
	nice -n 5 $(PY) -m int4rt_train.train --corpus $(CORPUS) --config configs/small.json \
		--run $(RUNS)/small $(if $(wildcard models/checkpoints/small-fp32/milestone.json),--init-from models/checkpoints/small-fp32)

train-lms: $(VENV)/.stamp-dev
	nice -n 5 $(PY) -m int4rt_train.lm --text $(CORPUS)/text/bible-lm.txt \
		--dev-text $(CORPUS)/text/bible-dev.txt --config configs/lm-small.json --run $(RUNS)/lm-bible
	nice -n 5 $(PY) -m int4rt_train.lm --text $(CORPUS)/text/fortunes-train.txt \
		--dev-text $(CORPUS)/text/fortunes-dev.txt --config configs/lm-small.json --run $(RUNS)/lm-source

milestone: $(VENV)/.stamp-dev
	$(PY) -m int4rt_train.milestone --run $(RUNS)/small --out models/checkpoints/small-fp32

# The default model bundle (docs/TRAINING.md §7) from the newest checkpoints of the runs.
MODEL ?= $(RUNS)/small
LM_EXTERNAL ?= models/checkpoints/lm-bible
LM_SOURCE ?= models/checkpoints/lm-source
ship: $(VENV)/.stamp-dev
	OMP_NUM_THREADS=1 nice -n 10 $(PY) -m int4rt_train.ship --model $(MODEL) \
		$(if $(LM_EXTERNAL),--lm-external $(LM_EXTERNAL)) \
		$(if $(LM_SOURCE),--lm-source $(LM_SOURCE)) --corpus $(CORPUS) --count 5

install: $(VENV)/.stamp-runtime
install-dev: $(VENV)/.stamp-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.stamp-runtime: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.stamp-runtime

clean:
	rm -rf $(VENV) $(WHEEL_DIR) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +

# The installed package, not the checkout: build a wheel, install it into its own venv and
# check the golden vectors from outside the repository (what CI runs after `make test`).
WHEEL_DIR ?= .wheel
check-wheel: $(VENV)/.stamp-dev
	rm -rf $(WHEEL_DIR)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w $(WHEEL_DIR)/dist .
	$(PYTHON) -m venv $(WHEEL_VENV_FLAGS) $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet $(WHEEL_PIP_FLAGS) $(WHEEL_DIR)/dist/*.whl
	cd "$$(mktemp -d)" && $(CURDIR)/$(WHEEL_DIR)/venv/bin/int4rt golden check \
		--dir $(CURDIR)/tests/golden
	cd "$$(mktemp -d)" && $(CURDIR)/$(WHEEL_DIR)/venv/bin/int4rt convert --random 0 \
		--config tiny -o tiny.safetensors
	cd "$$(mktemp -d)" && cp "$$($(CURDIR)/$(WHEEL_DIR)/venv/bin/python -c 'from int4rt.bundle \
		import load_bundle; print(load_bundle().clips[0].audio)')" clip.wav \
		&& $(CURDIR)/$(WHEEL_DIR)/venv/bin/int4rt transcribe clip.wav > out.jsonl \
		&& $(CURDIR)/$(WHEEL_DIR)/venv/bin/python -c 'import json, sys; \
		line = json.load(open("out.jsonl")); sys.exit("error" in line or "text" not in line)'
