.PHONY: all setup run test bench assets

VENV := .venv
PY   := $(VENV)/bin/python

all: test

setup:
	bash scripts/setup.sh

run: setup
	@mkdir -p out
	$(VENV)/bin/rtfx demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m latency_bench --quick

assets:
	bash scripts/setup.sh --assets
	$(PY) assets/make_assets.py
