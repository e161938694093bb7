# make demo: install everything, then train a VAE on the embedded digits and show what it learned.
# make test: install everything, then lint, format-check and run the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install chromium demo test test-slow bench clean

install: $(STAMP)

# Re-runs only when the dependency list changes; torch is pinned first so pip never pulls a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Headless Chromium for tests/test_report_browser.py, unpacked into the venv (no root needed).
chromium: $(VENV)/chromium/chromium

$(VENV)/chromium/chromium: tests/install_chromium.sh
	sh tests/install_chromium.sh $(VENV)/chromium

demo: install
	$(BIN)/python -m genzoo.demo --out demo_out

test: install chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q

test-slow: install
	$(BIN)/pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/vae_digits.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
