.PHONY: all setup run test bench assets

VENV := .venv
PY   := $(VENV)/bin/python

all: test

setup:
	bash scripts/setup.sh

run: setup
	@mkdir -p out
	$(VENV)/bin/rtfx render assets/audio/guitar_di.wav out/guitar_demo.wav --preset assets/presets/guitar_demo.json --blocksize 64 --channels 2

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m latency_bench --quick

assets:
	bash scripts/setup.sh --assets
	$(PY) assets/make_assets.py
