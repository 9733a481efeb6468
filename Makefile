# tfpilot: `make demo` and `make test` are the two commands a fresh machine needs.
VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
SHARED_DATA := $(abspath ../shared/datasets)

# Dataset files are looked up in $TFPILOT_DATA_DIR first (after --data-dir).
ifneq ($(wildcard $(SHARED_DATA)),)
export TFPILOT_DATA_DIR ?= $(SHARED_DATA)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test install install-dev browser bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# tensorflow-serving-api's protos are all tfpilot serve needs from it, and ydf-tf carries YDF's
# TensorFlow ops (decision forests in a SavedModel); both are installed without their dependencies,
# since they declare `tensorflow` and pip would put the full wheel over tensorflow-cpu.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps "tensorflow-serving-api==2.21.*" "ydf-tf==2.21.0.post1"
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Browser tests drive Debian's chromium with Playwright (never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

## demo: train and evaluate MNIST (scikit-learn's digits when MNIST is not found)
demo: $(VENV)/.installed
	$(VENV)/bin/tfpilot demo

## test: the test suite (slow tests excluded; run them with `make test PYTEST_ARGS="-m slow"`)
# Two processes or more (most tests wait on subprocesses, servers or one core); a file's tests stay
# in one process, so its module fixtures are built once.
PYTEST_ARGS ?= -m "not slow" -n auto --maxprocesses 4 --dist loadfile --durations=30
test: $(VENV)/.installed-dev browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/mnist_time_to_accuracy.py
	$(PY) bench/inference_latency.py

clean:
	rm -rf $(VENV) runs .pytest_cache
