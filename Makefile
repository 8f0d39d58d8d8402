# Two entry points for newcomers (see README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TUTOR := $(VENV)/bin/tutor

.PHONY: setup run test lint bench clean redis-server vectors

setup: $(VENV)/.installed

# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# The encoder's graph, exported once per install (~30 s); if it fails the built-in graph serves.
	-$(PY) -m index.onnx_export
	touch $@

# The bot when TUTOR_DISCORD_TOKEN is set (environment or .env), else the terminal chat.
run: setup
	$(TUTOR) kb ingest -q
	$(TUTOR) start

# The demo-pool tests need a real redis-server (Debian package); installed here when we can, else skipped.
redis-server:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null; } \
		|| echo "redis-server is not installed: the demo-pool tests will be skipped (apt-get install redis-server)"

# lint-imports: the package layers (pyproject.toml, [tool.importlinter]); --no-cache writes nothing here.
test: setup redis-server
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m pytest

# After editing a bundled source: the shipped vectors that let a fresh install start without embedding them.
vectors: setup
	$(PY) -m tutor.bundle

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis  # never the data folder: it holds quiz progress
