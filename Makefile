# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

VARIANT ?= imagenet
PHOTO ?= astronaut
PREVIEW ?= .demo/preview-$(VARIANT)-$(PHOTO).png

.PHONY: setup system-deps test test-all preview bench bench-pipeline bench-scoring bench-publish demo score publish \
	verify clean \
	imagenet-c imagenet-c-inception imagenet-64-c tiny-imagenet-c cifar-10-c cifar-100-c \
	imagenet-p imagenet-p-inception imagenet-64-p tiny-imagenet-p cifar-10-p cifar-100-p bench-perturbations \
	imagenet-c-bar cifar-10-c-bar bench-c-bar

$(VENV)/.installed: pyproject.toml
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0  # the CPU build; GPU machines: pip install a CUDA build first
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m corruptions.assets
	touch $@

setup: $(VENV)/.installed  ## virtual environment, system libraries, frost textures
	@$(PY) -m corruptions.assets >/dev/null

# libmagickwand serves the optional ImageMagick backend and is the tests' oracle for motion blur;
# SLURM (slurmctld, slurmd, munge) is the batch system the cluster tests start by pid
SYSTEM_PACKAGES := libmagickwand-dev slurmctld slurmd slurm-client munge
system-deps:
	@if ! ldconfig -p | grep -q libMagickWand || ! test -x /usr/sbin/slurmctld -a -x /usr/sbin/slurmd \
		-a -x /usr/sbin/munged -a -x /usr/bin/sbatch; then \
		echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

test: setup  ## the linter, then the test suite (what CI runs)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: setup  ## including the slow stress tests (`-m slow`), which `make test` leaves out
	$(PY) -m pytest -q -m "slow or not slow"

preview: setup  ## contact sheet: make preview VARIANT=imagenet PHOTO=astronaut
	$(PY) -m pipeline.preview --variant $(VARIANT) --photo $(PHOTO) --out $(PREVIEW)

# ORIGINALS=path: a copy of the original script (make_imagenet_c.py / make_imagenet_p.py), timed in the same run
bench: setup  ## speed of every corruption against the originals (ORIGINALS=.../make_imagenet_c.py)
	$(PY) benchmarks/bench_corruptions.py $(if $(ORIGINALS),--originals "$(ORIGINALS)")

bench-pipeline: setup  ## end-to-end ms per source image, 1 and 2 workers, peak memory
	$(PY) benchmarks/bench_pipeline.py

bench-perturbations: setup  ## ImageNet-P frames and writing against the originals (ORIGINALS=.../make_imagenet_p.py)
	$(PY) benchmarks/bench_perturbations.py $(if $(ORIGINALS),--originals "$(ORIGINALS)")

bench-c-bar: setup  ## ImageNet-C-bar / CIFAR-10-C-bar kernels against the original (ORIGINALS=.../imagenet_c_bar)
	$(PY) benchmarks/bench_c_bar.py $(if $(ORIGINALS),--originals "$(ORIGINALS)")

bench-scoring: setup  ## scoring data path and loop against a naive loop shaped like ImageNet-C/test.py
	$(PY) benchmarks/bench_scoring.py

bench-publish: setup  ## reproducible tarball writing against GNU tar cf
	$(PY) benchmarks/bench_publish.py

demo: setup  ## the main job on scikit-image's photos: generate, preview, score, publish, verify
	$(PY) -m pipeline.demo

# Scoring: make score MODEL=model.pt DATA=/data/imagenet-c [CLEAN=/data/val] [RESULTS=results/] [ARGS=...]
RESULTS ?= results
score: setup
	@test -n "$(MODEL)" -a -n "$(DATA)" || { echo "usage: make score MODEL=spec DATA=path [CLEAN=path] [RESULTS=dir]"; exit 2; }
	$(PY) -m pipeline score --model "$(MODEL)" --data "$(DATA)" $(if $(CLEAN),--clean "$(CLEAN)") --out "$(RESULTS)" $(ARGS)

# The datasets: make imagenet-c SOURCE=/data/imagenet/val OUT=/data/imagenet-c [ARGS="--workers 16"]
# (and make imagenet-p SOURCE=... OUT=...: all 20 ImageNet-P sequence kinds; make imagenet-c-bar / cifar-10-c-bar:
# ImageNet-C-bar's and CIFAR-10-C-bar's ten corruptions x five levels)
DATASETS := imagenet-c imagenet-c-inception imagenet-64-c tiny-imagenet-c cifar-10-c cifar-100-c \
	imagenet-p imagenet-p-inception imagenet-64-p tiny-imagenet-p cifar-10-p cifar-100-p imagenet-c-bar cifar-10-c-bar
$(DATASETS): setup
	@test -n "$(SOURCE)" -a -n "$(OUT)" || { echo "usage: make $@ SOURCE=path OUT=path [ARGS='--workers N ...']"; exit 2; }
	$(PY) -m pipeline generate $@ --source "$(SOURCE)" --out "$(OUT)" $(ARGS)

# Releases: make publish OUT=/data/imagenet-c DIST=/data/release [ARGS="--compress gzip"]; make verify DIST=... [SOURCE=...]
publish: setup
	@test -n "$(OUT)" -a -n "$(DIST)" || { echo "usage: make publish OUT=path DIST=path [ARGS=...]"; exit 2; }
	$(PY) -m pipeline publish "$(OUT)" --to "$(DIST)" $(ARGS)

verify: setup
	@test -n "$(DIST)" || { echo "usage: make verify DIST=path [SOURCE=path]"; exit 2; }
	$(PY) -m pipeline verify "$(DIST)" $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache
