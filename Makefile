# clipstudy: `make book` runs the whole study at the laptop profile; `make test` runs the tests.
# Both set up the environment first. Set-up is idempotent: the virtual environment is reused
# while requirements.lock and pyproject.toml are unchanged (their hash names the stamp file).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PINS   := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.pins-$(PINS)
WORLD  ?= data/worlds/default
PROFILE ?= laptop

.PHONY: setup test world book clean

setup: $(STAMP)

$(STAMP):
	rm -f $(VENV)/.pins-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(PY) -m pytest -q

world: setup  # built once; delete the folder (or pass WORLD=...) to rebuild
	test -f $(WORLD)/world.json || $(PY) -m clipstudy world build --out $(WORLD)

book: world
	$(PY) -m clipstudy book run --profile $(PROFILE) --world $(WORLD)

clean:
	rm -rf _build notebooks/_executed
