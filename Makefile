# clipstudy: `make book` runs the whole study at the laptop profile; `make test` runs the tests.
# Both set up the environment first (`make test` also headless Chromium, where it can). Set-up is
# idempotent: the virtual environment is reused while requirements.lock and pyproject.toml are
# unchanged (their hash names the stamp file).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PINS   := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.pins-$(PINS)
WORLD  ?= data/worlds/default
PROFILE ?= laptop
# PRECISION=fp32 or bf16 sets every run's precision; empty: bf16 where the hardware multiplies it natively, else fp32
PRECISION ?=

.PHONY: setup styles browser test test-gpu world book clean

setup: $(STAMP)

$(STAMP):
	rm -f $(VENV)/.pins-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The two art styles that come from npm (Noto colour, Fluent flat): fetched once into data/cache/npm.
styles: setup
	@$(PY) -m clipstudy world styles --fetch >/dev/null

# Debian's Chromium + ChromeDriver for tests/test_browser.py (which skips without them unless
# CLIPSTUDY_REQUIRE_BROWSER=1): installed with apt-get where absent, when running as root.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null; \
	else echo "no /usr/bin/chromium and not root: tests/test_browser.py will skip (apt-get install chromium chromium-driver)"; fi

test: styles browser
	$(PY) -m pytest -q -n auto

# On a machine with a CUDA GPU (`make test` hides it and runs the CPU suite there too)
test-gpu: styles
	CLIPSTUDY_TEST_GPU=1 $(PY) -m pytest -q tests/test_gpu.py

world: styles  # built once; delete the folder (or pass WORLD=...) to rebuild
	test -f $(WORLD)/world.json || $(PY) -m clipstudy world build --out $(WORLD)

book: world
	CLIPSTUDY_PRECISION=$(PRECISION) $(PY) -m clipstudy book run --profile $(PROFILE) --world $(WORLD)

clean:
	rm -rf _build notebooks/_executed
