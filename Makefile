# Comanda: `make run` starts everything on the embedded defaults; `make test` runs the whole suite.
# Both create the two virtual environments when missing (Python 3.10, as Rasa 3.6 requires).

PYTHON ?= python3.10
RASA_VENV := .venv
ACTIONS_VENV := .venv-actions
COMANDA := $(RASA_VENV)/bin/comanda
PIP_FLAGS := --quiet --disable-pip-version-check
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false
export TQDM_DISABLE := 1
# More pytest options for the suites, e.g. `make test PYTEST=--durations=40`.
PYTEST ?=

.PHONY: run run-cluster bench-e2e test test-jobs lint venvs db train shell validate lock clean-venvs test-core test-rasa test-stories test-e2e test-chaos bench-webhook bench-reservations bench-parse bench-payments bench-reports eval eval-baseline

run: venvs db train
	@$(COMANDA) run

# Two replicas of every process behind HAProxy (Debian's, installed when missing) on the PostgreSQL and
# Redis of 127.0.0.1, on the usual ports; see "Beyond one machine" in the README.
run-cluster: venvs train
	@$(COMANDA) run-cluster

shell: venvs db train
	@$(COMANDA) shell

# Both at once (each pip mostly waits on downloads and unpacking): about half the time on a fresh clone.
venvs:
	@$(MAKE) --no-print-directory -j2 $(RASA_VENV)/.installed $(ACTIONS_VENV)/.installed

python-check:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null || { \
	  echo "error: Python 3.10 not found as '$(PYTHON)' (Rasa 3.6 needs 3.8-3.10): install it (e.g. 'pyenv install 3.10') or run 'make PYTHON=/path/to/python3.10 ...'"; exit 1; }

# $(call make_venv,folder,requirements name,what it is for)
define make_venv
	@$(MAKE) --no-print-directory python-check
	@echo "creating $(1) ($(3))..."
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	@$(1)/bin/pip install $(PIP_FLAGS) "pip<24.1" wheel "setuptools<70"
	@$(1)/bin/pip install $(PIP_FLAGS) -r requirements/$(2).txt -c requirements/$(2).lock
	@$(1)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	@$(1)/bin/pip check
	@touch $(1)/.installed
endef

$(RASA_VENV)/.installed: requirements/rasa.txt requirements/rasa.lock pyproject.toml
	$(call make_venv,$(RASA_VENV),rasa,Rasa server)

$(ACTIONS_VENV)/.installed: requirements/actions.txt requirements/actions.lock pyproject.toml
	$(call make_venv,$(ACTIONS_VENV),actions,action server and back office)

# Migrate, and load the demo business into an empty database.
db: venvs
	@$(COMANDA) migrate
	@$(COMANDA) seed --demo --if-empty

# Rasa's fingerprinting skips training when data, config and domain are unchanged.
train: venvs
	@$(COMANDA) rasa train --domain domain --data data --config config.yml --out models --fixed-model-name comanda

validate: venvs
	@$(COMANDA) rasa data validate --domain domain --data data --config config.yml --fail-on-warnings

# Regenerate the lock files after changing requirements/*.txt.
lock:
	@$(RASA_VENV)/bin/pip freeze --exclude-editable | grep -v '^comanda' > requirements/rasa.lock
	@$(ACTIONS_VENV)/bin/pip freeze --exclude-editable | grep -v '^comanda' > requirements/actions.lock

# After the environments, three jobs at a time (make -j3) on the two cores: the suites wait on servers,
# browsers and databases as much as they compute, so an overcommitted machine finishes sooner than one job
# after another. The longest chain first (training, then the end-to-end tests), test-core (itself on both
# cores) beside it, and lint, validate and the other suites that need the model in the third place. They
# share no file, port or database (free ports; databases and schemas named per run). -Otarget prints each
# job's output whole when it ends, so suites never interleave; a failure starts nothing more and fails
# `make test`.
test: venvs
	@$(MAKE) --no-print-directory -j3 -Otarget test-jobs

test-jobs: train test-core lint test-e2e validate test-rasa test-stories

# ruff (lint and format) on every package; the layer contracts (pyproject.toml, import-linter); mypy on
# every package, each module against the packages of the environment it runs in, so that what it imports
# is read with its real types. RASA_TYPED, the Rasa server's code (Rasa, spaCy, aiohttp, redis live only in
# .venv), is checked by the same mypy with `--python-executable` .venv's Python, which points mypy at
# .venv's site-packages without installing mypy there; the rest against .venv-actions' packages.
LINTED := comanda cli actions connectors integrations backoffice nlu_components bench tests
TYPED := comanda actions connectors integrations backoffice nlu_components cli
RASA_TYPED := connectors nlu_components cli/rasa_server.py cli/cluster.py integrations/whatsapp/graph.py
lint: venvs
	@$(ACTIONS_VENV)/bin/ruff check $(LINTED)
	@$(ACTIONS_VENV)/bin/ruff format --check $(LINTED)
	@$(ACTIONS_VENV)/bin/lint-imports --no-logo
	@$(ACTIONS_VENV)/bin/mypy $(filter-out $(RASA_TYPED),$(TYPED)) $(foreach f,$(filter %.py,$(RASA_TYPED)),--exclude '^$(f)$$')
	@$(ACTIONS_VENV)/bin/mypy --python-executable $(RASA_VENV)/bin/python --cache-dir .mypy_cache/rasa $(RASA_TYPED)

# Core, services, actions and the back office (simulator, browser test): in the action server's
# environment, on SQLite and (when COMANDA_TEST_DATABASE_URL is set) PostgreSQL.
# Two pytest-xdist workers, each module on one worker (its module-scoped servers and browser start once).
test-core: venvs
	@$(ACTIONS_VENV)/bin/python -m pytest -q -n 2 --dist loadfile $(PYTEST) tests/core tests/cli tests/actions tests/backoffice

# NLU components, channels and the tracker store: in the Rasa server's environment (`comanda parse` on
# the trained model included).
test-rasa: venvs train
	@$(RASA_VENV)/bin/python -m pytest -q $(PYTEST) tests/rasa tests/channel

# Rasa's end-to-end test stories on the trained model.
test-stories: venvs train
	@$(COMANDA) rasa test core --stories tests/stories --model models/comanda.tar.gz --out results/stories --fail-on-prediction-errors --no-plot

# The whole stack started as `make run` starts it, spoken to over HTTP and through the WhatsApp simulator.
test-e2e: venvs train
	@$(ACTIONS_VENV)/bin/python -m pytest -q $(PYTEST) tests/e2e

# Crashes and faults (tests/chaos/, README "Faults survived"): kill -9 of each process at chosen points and
# of one replica of run-cluster's behind HAProxy mid-burst, PostgreSQL and Redis cut mid-burst, the Graph API
# failing, Rasa down while notifications are due, a poisoned message. Needs PostgreSQL
# (COMANDA_TEST_DATABASE_URL), Redis on 127.0.0.1:6379 and HAProxy; CI runs it after `make test`.
test-chaos: venvs train
	@$(ACTIONS_VENV)/bin/python -m pytest -q tests/chaos

clean-venvs:
	rm -rf $(RASA_VENV) $(ACTIONS_VENV)

# Benchmarks: figures for the README (not part of `make test`).
# make bench-webhook BENCH_WEBHOOK="--profile var/bench/webhook-profile": py-spy on the Rasa server meanwhile.
BENCH_WEBHOOK ?=
bench-webhook: venvs train
	@$(RASA_VENV)/bin/python bench/webhook.py $(BENCH_WEBHOOK)

# Reservations on PostgreSQL (a throw-away schema): make bench-reservations BENCH_PG=postgresql://...
BENCH_PG ?= postgresql://postgres@127.0.0.1:5432/test
bench-reservations: venvs
	@$(ACTIONS_VENV)/bin/python bench/reservations.py --url $(BENCH_PG) --workers 20 --seconds 10

# Comanda's whole stack and a bare `rasa init` bot side by side, same load (bench/e2e.py): answered/s at
# saturation, reply p50/p95 at 10 conversations/s, CPU ms per message per process. On a shared machine
# keep it small: make bench-e2e BENCH_E2E="--users 2 --rate 0.5 --seconds 10"
BENCH_E2E ?=
bench-e2e: venvs train
	@$(RASA_VENV)/bin/python -m bench.e2e $(BENCH_E2E)

bench-parse: venvs
	@$(RASA_VENV)/bin/python bench/parse.py

# 200 signed payment webhooks for 100 orders (replays, duplicates, shuffled) at a real back office on PostgreSQL.
bench-payments: venvs
	@$(ACTIONS_VENV)/bin/python bench/payments.py --url $(BENCH_PG) --orders 100 --webhooks 200 --concurrency 50

# The four reports over a day, 30 days and a year of a busy shop (bench/reports.py), on SQLite and PostgreSQL.
bench-reports: venvs
	@$(ACTIONS_VENV)/bin/python bench/reports.py
	@$(ACTIONS_VENV)/bin/python bench/reports.py --url $(BENCH_PG)

# The NLU on a held-out set (default tests/nlu/; `make eval HELD_OUT=tests/nlu/fresh`), per language,
# against a fresh copy of the demo catalog; reports/nlu/<model>/index.html links an HTML report per
# language (figures, confusion matrix, misses), next to Rasa's own reports.
HELD_OUT ?= tests/nlu
EVAL_TAG := $(if $(filter tests/nlu tests/nlu/,$(HELD_OUT)),,-$(notdir $(patsubst %/,%,$(HELD_OUT))))
EVAL_DB := sqlite:///$(CURDIR)/var/eval/comanda.db
define eval_model
	@rm -f var/eval/comanda.db* && mkdir -p var/eval
	@COMANDA_DATABASE_URL=$(EVAL_DB) $(COMANDA) migrate >/dev/null
	@COMANDA_DATABASE_URL=$(EVAL_DB) $(COMANDA) seed --demo >/dev/null
	@COMANDA_DATABASE_URL=$(EVAL_DB) $(RASA_VENV)/bin/python bench/nlu_eval.py --held-out $(HELD_OUT) --model $(1) --out reports/nlu/$(2)$(EVAL_TAG) --json reports/nlu/$(2)$(EVAL_TAG).json
endef

eval: venvs train
	$(call eval_model,models/comanda.tar.gz,comanda)

# The same held-out set on Rasa's default NLU pipeline trained on the same data (bench/baseline-config.yml).
eval-baseline: venvs
	@$(COMANDA) rasa train nlu --config bench/baseline-config.yml --nlu data/nlu --domain domain --out var/eval --fixed-model-name baseline
	$(call eval_model,var/eval/baseline.tar.gz,baseline)
