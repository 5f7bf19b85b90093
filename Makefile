# The two commands of the README: `make demo` and `make test`. Each sets itself
# up on a fresh machine: a .venv with the Python tools, and the extension
# compiled in release mode.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
PYTHON ?= python3
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test build lint rust-test py-test bench bench-large bench-kernels clean

$(DEPS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9.4,<2" "pyarrow>=16" "polars>=1.0" "duckdb>=1.1" \
		"hypothesis>=6" "pytest>=8" "ruff>=0.6" "mypy>=1.10" "numpy>=1.26"
	touch $(DEPS)

build: $(DEPS)
	$(VENV)/bin/maturin develop --release --quiet

demo: build
	$(VENV)/bin/carbonledger demo --force

lint: $(DEPS)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy --strict python tests

rust-test:
	cargo test --release -p carbonledger-core --lib --tests

py-test: build
	$(VENV)/bin/pytest -q

test: build lint rust-test py-test

# Benchmarks (not part of `make test`): carbonledger, hand-written Polars and
# DuckDB versions, and the pyarrow-read / numpy-pass limits, on the same files.
bench: build
	$(PY) benches/run.py --samples 1e7 --repeat 5 --repeat-baselines 3
	$(PY) benches/run.py --samples 1e8 --repeat 5 --repeat-baselines 2

# 10^9 samples (about 7 GB of Parquet, generated once under benches/data):
# carbonledger in both dump orders against the pyarrow read limits. The
# hand-written baselines would need far more than this machine's memory.
bench-large: build
	$(PY) benches/run.py --samples 1e9 --repeat 2 \
		--only cl_time,cl_device,pa_read,pa_read_dict

# Rust kernel benchmarks (divan): id resolution, one batch through the
# engine in both dump orders, the whole in-memory run.
bench-kernels:
	cargo bench -p carbonledger-core --bench kernels

clean:
	rm -rf target $(VENV)
