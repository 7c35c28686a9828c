# carbon-biomes: two commands do all the set-up.
#   make demo   build .venv, generate the synthetic sample data, run the demo recipe
#   make test   build .venv, run the test suite
# Everything lands inside this checkout: .venv/, sample_data/, esmvaltool_config/, esmvaltool_output/.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
VENV_PY     := $(VENV)/bin/python
STAMP       := $(VENV)/.carbon-biomes-installed
SAMPLE_DIR  := $(CURDIR)/sample_data
CONFIG_DIR  := $(CURDIR)/esmvaltool_config
OUTPUT_DIR  := $(CURDIR)/esmvaltool_output
DEMO_RECIPE := recipes/recipe_carbon_biomes_demo.yml
PAPER_RECIPE := recipes/recipe_carbon_biomes_paper.yml
PYTEST_ARGS ?=
DEMO_ARGS   ?=

.PHONY: help env browser demo paper sample-data test test-fast lint bench bench-paper bench-models clean distclean

help:
	@echo "make demo       set up .venv, generate sample data, run $(DEMO_RECIPE)"
	@echo "make paper      the same data through $(PAPER_RECIPE) (method: paper)"
	@echo "make test       set up .venv and run the full test suite (incl. an esmvaltool run)"
	@echo "make test-fast  tests without the end-to-end esmvaltool run and slow network training"
	@echo "make lint       ruff"
	@echo "make bench      detection benchmarks (box regression, adaptive cut)"
	@echo "make bench-paper  0.25° benchmark of every stage and of esmvaltool runs (slow)"
	@echo "make bench-models a dozen 1° datasets in one recipe (after bench-paper; slow)"
	@echo "make clean      remove outputs; make distclean also removes .venv and sample data"

env: $(STAMP)

$(STAMP): pyproject.toml tools/setup_env.sh tools/find_python.sh tools/esmpy_stub/esmpy/__init__.py
	@bash tools/setup_env.sh $(VENV)
	@touch $(STAMP)

sample-data: $(SAMPLE_DIR)/.complete

$(SAMPLE_DIR)/.complete: $(STAMP)
	@echo "Generating synthetic CMIP6-like sample data in $(SAMPLE_DIR) (once; a few minutes)"
	@rm -rf $(SAMPLE_DIR)
	$(VENV)/bin/carbon-biomes sample-data --out $(SAMPLE_DIR)
	@touch $@

demo: $(STAMP) sample-data
	$(VENV_PY) tools/run_demo.py --recipe $(DEMO_RECIPE) --data $(SAMPLE_DIR) \
	    --config-dir $(CONFIG_DIR) --output-dir $(OUTPUT_DIR) $(DEMO_ARGS)

paper: $(STAMP) sample-data
	$(VENV_PY) tools/run_demo.py --recipe $(PAPER_RECIPE) --data $(SAMPLE_DIR) \
	    --config-dir $(CONFIG_DIR) --output-dir $(OUTPUT_DIR) $(DEMO_ARGS)

# The report test opens the HTML report in Debian's headless Chromium (installed here when
# missing; needs root or sudo, or install the package 'chromium' yourself).
CHROMIUM    ?= /usr/bin/chromium

browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	    echo "Installing Debian's chromium for the report test (apt-get)"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(STAMP) browser
	CARBON_BIOMES_CHROMIUM=$(CHROMIUM) $(VENV_PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV_PY) -m pytest -m "not esmvaltool and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src diag_scripts tests benchmarks tools

bench: $(STAMP)
	$(VENV_PY) benchmarks/bench_detection.py

# 0.25° paper-scale benchmark: every stage per month, the per-box baseline and esmvaltool runs
# of BENCH_YEARS years (2 5 10: about 15 min and 3 GB of data in bench_output/; 61 years adds
# about 20 min (5.5 of them generating data), 4.3 GB of data and, while it runs, 12 GB of
# preprocessed files)
BENCH_YEARS ?= 2 5 10
bench-paper: $(STAMP)
	MPLBACKEND=Agg $(VENV_PY) benchmarks/bench_paper_scale.py --resolution 0.25 \
	    --years $(BENCH_YEARS) --esmvaltool-timeout 5400 --out $(CURDIR)/bench_output/paper_scale

# a dozen 1° datasets in one recipe (every stage and both comparisons), 30 years each; added to
# the table of bench-paper (run that first)
bench-models: $(STAMP)
	MPLBACKEND=Agg $(VENV_PY) benchmarks/bench_paper_scale.py --esmvaltool-only --resolution 1 \
	    --models 12 --years 30 --esmvaltool-timeout 5400 --out $(CURDIR)/bench_output/paper_scale

clean:
	rm -rf $(OUTPUT_DIR) $(CONFIG_DIR) .pytest_cache bench_output

distclean: clean
	rm -rf $(VENV) $(SAMPLE_DIR)
