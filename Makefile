# Every target bootstraps its own virtualenv from nothing: a fresh clone needs only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/anomalyd.yaml

.PHONY: help install run test test-unit test-integration reliability lint fmt clean bench bench-latency bench-quality bench-memory bench-drift

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the daemon and its dev tools

run: $(STAMP)  ## the daemon on the embedded broker, with demo traffic; alerts print to the console
	@# A background job of a non-interactive shell starts with SIGINT ignored: the demo takes
	@# it back (Ctrl-C stops it with the worker); the trap stops it on any other exit.
	@$(BIN)/anomalyd demo --config $(CONFIG) --anomaly-every 20 & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	$(BIN)/anomalyd worker --config $(CONFIG)

# `slow` tests (reliability scenarios that take minutes) run only under `make reliability`.
test: $(STAMP)  ## unit, property and integration tests (embedded broker, real HTTP/SMTP on 127.0.0.1)
	$(BIN)/pytest -q -m 'not slow'

test-unit: $(STAMP)  ## only the fast tests with no broker
	$(BIN)/pytest -q -m 'not integration'

test-integration: $(STAMP)  ## only the tests against the embedded broker
	$(BIN)/pytest -q -m 'integration and not slow'

reliability: $(STAMP)  ## crashes, outages, hostile input, soak at full size; prints one table of results
	ANOMALYD_RELIABILITY=full $(BIN)/pytest -q -m reliability tests/reliability $(ARGS)

bench: $(STAMP)  ## throughput and start-up of the full pipeline vs the raw consumer and a stock Faust agent
	PYTHONPATH=tests $(BIN)/python tests/bench/bench_throughput.py $(ARGS)

bench-quality: $(STAMP)  ## page-level NAB scores of the default config on NAB's labelled series (not shipped), anchors, River baseline, synthetic controls
	PYTHONPATH=tests $(BIN)/python tests/bench/bench_quality.py $(ARGS)

bench-memory: $(STAMP)  ## memory per stream of the engine at 1k/10k/100k streams, per detector
	$(BIN)/python tests/bench/bench_memory.py

bench-latency: $(STAMP)  ## start-up time and event-to-webhook latency of a real worker
	PYTHONPATH=tests $(BIN)/python tests/bench/bench_latency.py

bench-drift: $(STAMP)  ## drift detection rate, delay and false alarms on seeded streams, beside ADWIN and PSI > 0.2
	PYTHONPATH=tests $(BIN)/python tests/bench/bench_drift.py

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check daemon tests
	$(BIN)/ruff format --check daemon tests
	$(BIN)/mypy

fmt: $(STAMP)  ## format the code
	$(BIN)/ruff format daemon tests
	$(BIN)/ruff check --fix daemon tests

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
