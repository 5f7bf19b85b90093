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

.PHONY: demo test build wheel wheel-test lint rust-test py-test bench bench-large bench-kernels bench-scaling clean

$(DEPS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9.4,<2" "pyarrow>=16" "polars>=1.0" "duckdb>=1.1" \
		"hypothesis>=6" "pytest>=8" "ruff>=0.6" "mypy>=1.10" "numpy>=1.26" "ziglang>=0.13" \
		"pyspark>=4,<5" "pandas>=2.2,<3"
	touch $(DEPS)

build: $(DEPS)
	@# A version-specific build from before the abi3 wheel would shadow it.
	rm -f python/carbonledger/_native.cpython-*.so
	$(VENV)/bin/maturin develop --release --locked --quiet

# The wheel users install: abi3 (one wheel for CPython >= 3.10), manylinux,
# release profile (no debug info). It shares the cargo build of `build`.
WHEEL_COMPAT ?= manylinux_2_28
wheel: $(DEPS)
	rm -rf dist
	$(VENV)/bin/maturin build --release --locked --zig --compatibility $(WHEEL_COMPAT) --out dist

# Install that wheel into a fresh virtual environment, outside the source
# tree, and run the demo and the CLI from it.
wheel-test: wheel
	bash tests/wheel_install.sh dist

demo: build
	$(VENV)/bin/carbonledger demo --force

lint: $(DEPS)
	bash .ci/check-features
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy --strict python tests

rust-test:
	cargo test --release -p carbonledger-core --lib --tests

py-test: build
	$(VENV)/bin/python -m mypy.stubtest carbonledger._native
	$(VENV)/bin/pytest -q

test: build lint rust-test py-test wheel-test

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

# How cost grows (issue 9): many allocations over 1,000 devices, thousands in
# flight on one device, a million devices through `carbonledger run`; time,
# peak RSS and scaling exponents per shape (benches/scaling.py).
bench-scaling: build
	$(PY) benches/scaling.py

# Rust kernel benchmarks (divan): id resolution, one batch through the
# engine in both dump orders, the whole in-memory run.
bench-kernels:
	cargo bench -p carbonledger-core --bench kernels

clean:
	rm -rf target $(VENV)

# Fuzzing the Rust core (docs/fuzzing.md): libFuzzer targets in fuzz/, each
# run for FUZZ_SECONDS (make fuzz) or FUZZ_SMOKE_SECONDS (make fuzz-smoke,
# part of CI) with AddressSanitizer and debug assertions (overflow checks).
# cargo fuzz passes nightly flags (-Zsanitizer); RUSTC_BOOTSTRAP lets the one
# installed toolchain take them, so no second toolchain is needed. Findings
# land in fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/
# from the committed seeds in fuzz/seeds/.
FUZZ_TARGETS ?= account validate integrate ids schema timeline parquet
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SANITIZER ?= address
FUZZ_CARGO := RUSTC_BOOTSTRAP=1 cargo fuzz
# Leak detection is off: the engine's worker threads make LeakSanitizer scan
# the heap after every input (20x slower) and Rust leaks are not unsafety.
FUZZ_ARGS ?= -detect_leaks=0 -timeout=30 -max_len=8192 -print_final_stats=1

.PHONY: fuzz fuzz-smoke fuzz-setup

fuzz-setup:
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2

fuzz: fuzz-setup
	$(FUZZ_CARGO) build -a -s $(FUZZ_SANITIZER) --fuzz-dir fuzz
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t fuzz/artifacts/$$t; \
		echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		$(FUZZ_CARGO) run -a -s $(FUZZ_SANITIZER) --fuzz-dir fuzz $$t \
			fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=fuzz/artifacts/$$t/ $(FUZZ_ARGS) || exit 1; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)
