# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

VARIANT ?= imagenet
PHOTO ?= astronaut
PREVIEW ?= docs/preview-$(VARIANT)-$(PHOTO).png

.PHONY: setup system-deps test test-all preview bench demo clean

$(VENV)/.installed: pyproject.toml
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m corruptions.assets
	touch $@

setup: $(VENV)/.installed  ## virtual environment, system libraries, frost textures
	@$(PY) -m corruptions.assets >/dev/null

# libmagickwand serves the optional ImageMagick backend and is the tests' oracle for motion blur
system-deps:
	@if ! ldconfig -p | grep -q libMagickWand; then \
		echo "installing libmagickwand with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmagickwand-dev >/dev/null; \
	fi

test: setup  ## the test suite (what CI runs)
	$(PY) -m pytest -q

test-all: setup  ## including the opt-in slow tests
	$(PY) -m pytest -q -m "slow or not slow"

preview: setup  ## contact sheet: make preview VARIANT=imagenet PHOTO=astronaut
	$(PY) -m corruptions.preview --variant $(VARIANT) --photo $(PHOTO) --out $(PREVIEW)

bench: setup  ## speed of every corruption against the originals' figures
	$(PY) benchmarks/bench_corruptions.py

demo: setup  ## contact sheets of every variant on the sample photos
	@for v in imagenet inception imagenet64 tiny cifar; do \
		$(PY) -m corruptions.preview --variant $$v --photo $(PHOTO) --out .demo/preview-$$v-$(PHOTO).png || exit 1; \
	done
	@echo "demo: contact sheets written to $$(pwd)/.demo/"

clean:
	rm -rf $(VENV) .demo .pytest_cache
