# kmo: every target does its own set-up on a fresh Debian machine (root installs system packages).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test faults soak bench lint install sysdeps broker-jars clean

demo: install broker-jars
	$(BIN)/kmo demo

test: install broker-jars
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not faults"
	$(MAKE) --no-print-directory faults

# the slow fault-injection runs (tests/faults): their own target, which `make test` (and so CI) runs too
faults: install broker-jars
	$(BIN)/pytest -q -m faults

# minutes at a steady rate with every component running (not part of `make test`): bench/soak.py
soak: install broker-jars
	$(BIN)/python bench/soak.py

# issue #8's benchmark (not part of `make test`; about 15 minutes): bench/pipeline.py, figures in bench/results/
bench: install broker-jars
	$(BIN)/python bench/pipeline.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: sysdeps $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# Java 17 + Maven fetch and run the embedded Kafka broker; SoftHSM2 is the HSM the tests use. Installed only when missing and root.
sysdeps:
	@bash scripts/install-system-deps.sh

# Resolve the Apache Kafka broker jars from Maven Central once per machine (~/.cache/kmo).
broker-jars: install
	$(BIN)/kmo broker fetch

clean:
	rm -rf .kmo .pytest_cache
