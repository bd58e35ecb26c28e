# StudyBuddy developer commands. `make run` and `make test` set themselves up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOAD_VENV  := .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: help install run test test-fast lint fmt typecheck migrate migration worker scheduler bench bench-reads clean lock
.PHONY: load-install loadtest loadtest-smoke lock-load

help:
	@echo "make run        serve on http://$(HOST):$(PORT) (embedded default: SQLite, in-process bus)"
	@echo "make test       full test suite against PostgreSQL and Redis, with coverage gates"
	@echo "make lint       ruff format --check, ruff check, mypy --strict, bandit, import-linter"
	@echo "make fmt        ruff format and ruff check --fix"
	@echo "make migrate    apply database migrations (DATABASE_URL or the SQLite default)"
	@echo "make worker     run the taskiq worker (with REDIS_URL; the embedded node runs its own jobs)"
	@echo "make scheduler  run the periodic jobs' scheduler (with REDIS_URL; likewise)"
	@echo "make bench      run the load benchmarks in loadtests/"
	@echo "make bench-reads  seed 1M messages (once) and time the main reads (BENCH_DB, BENCH_ARGS)"
	@echo "make bench-storm    reconnect storm: 2,000 sockets, one of 2 nodes restarted (STORM_ARGS)"
	@echo "make bench-acks     ack latency at REDIS_MIN_REPLICAS_ACK 0 and 1 on a local Redis Cluster"
	@echo "make bench-cluster  fanout CPU on Redis Cluster vs one Redis, and 100 rooms over the shards"
	@echo "make dr-drill   disaster-recovery drill: lose PostgreSQL and Redis under traffic, restore, verify"
	@echo "make lock       re-resolve requirements/lock.txt from pyproject.toml"
	@echo "make cluster    start a local Redis Cluster (3 primaries + 3 replicas) on 7000-7005"
	@echo "make cluster-stop  stop it (data stays in .cluster/; make cluster resumes it)"
	@echo "make loadtest   2-node deployment + Locust (USERS, SPAWN_RATE, DURATION, SCENARIO, HOST=http://...)"
	@echo "make loadtest-smoke  the CI smoke: mixed scenario, 50 users, 30 s"

$(STAMP): requirements/lock.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || (echo "Python >= 3.11 is required" && exit 1)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/python -m server.serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(BIN)/python -m server.tasks.worker

scheduler: $(STAMP)
	$(BIN)/python -m server.tasks.scheduler

test: $(STAMP) $(LOAD_STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report
	$(BIN)/coverage report --fail-under=100 --include='server/security/*,server/services/auth.py,server/services/users.py,server/services/erasures.py,server/store/users.py,server/store/accounts.py,server/api/auth.py,server/api/users.py,server/api/cookies.py,server/api/upload.py,server/services/account_recovery.py,server/api/account_recovery.py,server/store/account_tokens.py,protocol/*'

test-fast: $(STAMP)
	$(BIN)/pytest -x -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r server protocol
	$(BIN)/lint-imports --no-cache

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migration: $(STAMP)
	@test -n "$(m)" || (echo 'usage: make migration m=create_things' && exit 1)
	$(BIN)/alembic revision --autogenerate -m "$(m)"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[load]'
	$(BIN)/python -m loadtests.fanout

# The read benchmark of issue 17: seeds BENCH_DB on the local PostgreSQL (idempotent), starts
# one node on it and times history, search, listings, unread counts and the export.
BENCH_DB ?= bench_reads
bench-reads: $(STAMP)
	$(BIN)/python -m loadtests.reads --database $(BENCH_DB) $(BENCH_ARGS)

# Issue 11's reconnect storm with the other node's p99 budget (tests/integration/
# test_reconnect_storm.py runs the same storm for correctness only). STORM_ARGS e.g.
# "--profile 12 --py-spy /tmp/pyspy/bin/py-spy" records the other node with py-spy.
.PHONY: bench-reads bench-storm bench-acks bench-cluster
bench-storm: $(STAMP)
	$(BIN)/python -m loadtests.storm $(STORM_ARGS)

# Issue 12 on a Redis Cluster the benchmark starts itself (scripts/redis_cluster.py, free ports):
# ack latency at N=0/1 (ADR 0023), and cluster fanout CPU vs one Redis plus the rooms split.
bench-acks: $(STAMP)
	$(BIN)/python -m loadtests.acks $(ACKS_ARGS)

bench-cluster: $(STAMP)
	$(BIN)/python -m loadtests.sharded $(CLUSTER_BENCH_ARGS)

lock:
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --no-emit-index-url \
		--no-emit-find-links --strip-extras --allow-unsafe -o requirements/lock.txt pyproject.toml

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache htmlcov

.PHONY: dr-drill
dr-drill: $(STAMP)
	$(BIN)/python -m scripts.dr_drill

# A local Redis Cluster (scripts/redis_cluster.py; the test fixtures and loadtests use the same
# code). CLUSTER_PORT is the first of 6 ports; CLUSTER_DIR keeps each node's data and logs.
CLUSTER_DIR  ?= .cluster
CLUSTER_PORT ?= 7000
.PHONY: cluster cluster-stop cluster-status

cluster: $(STAMP)
	$(BIN)/python -m scripts.redis_cluster --folder $(CLUSTER_DIR) --base-port $(CLUSTER_PORT) start

cluster-stop: $(STAMP)
	$(BIN)/python -m scripts.redis_cluster --folder $(CLUSTER_DIR) --base-port $(CLUSTER_PORT) stop

cluster-status: $(STAMP)
	$(BIN)/python -m scripts.redis_cluster --folder $(CLUSTER_DIR) --base-port $(CLUSTER_PORT) status

# Infrastructure as code (deploy/terraform, Dockerfile): checks that need no cloud and no Docker
# engine. Their tools live in .venv-iac/ with their own locks, away from the application's:
# scan/ (checkov, hadolint) and hcl2/ (python-hcl2; checkov ships a fork under the same name).
IAC_VENV := .venv-iac
IAC_SCAN := $(IAC_VENV)/scan/bin
IAC_HCL2 := $(IAC_VENV)/hcl2/bin
CHECKOV  := $(IAC_SCAN)/checkov --quiet --compact --skip-download

.PHONY: iac-check iac-lock

$(IAC_VENV)/.scan-installed: requirements/iac.txt
	test -x $(IAC_SCAN)/python || $(PYTHON) -m venv $(IAC_VENV)/scan
	$(IAC_SCAN)/python -m pip install --quiet --upgrade "pip>=24"
	$(IAC_SCAN)/python -m pip install --quiet --require-hashes -r requirements/iac.txt
	touch $@

$(IAC_VENV)/.hcl2-installed: requirements/hcl2.txt
	test -x $(IAC_HCL2)/python || $(PYTHON) -m venv $(IAC_VENV)/hcl2
	$(IAC_HCL2)/python -m pip install --quiet --upgrade "pip>=24"
	$(IAC_HCL2)/python -m pip install --quiet --require-hashes -r requirements/hcl2.txt
	touch $@

iac-check: $(IAC_VENV)/.scan-installed $(IAC_VENV)/.hcl2-installed
	$(IAC_HCL2)/python deploy/check_iac.py
	$(CHECKOV) --framework terraform secrets -d deploy/terraform
	$(CHECKOV) --framework dockerfile secrets -f Dockerfile
	$(IAC_SCAN)/hadolint Dockerfile && echo "hadolint: Dockerfile clean"
	@if command -v terraform >/dev/null 2>&1; then \
		CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive deploy/terraform \
		&& echo "terraform fmt: formatted"; \
	else echo "terraform fmt: not run (no terraform binary on this machine)"; fi
	$(IAC_SCAN)/python deploy/rehearse_image.py

iac-lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --no-emit-index-url --no-emit-find-links \
		--strip-extras --allow-unsafe -o requirements/iac.txt requirements/iac.in
	$(BIN)/pip-compile --quiet --generate-hashes --no-emit-index-url --no-emit-find-links \
		--strip-extras --allow-unsafe -o requirements/hcl2.txt requirements/hcl2.in
# Issue 11's yardstick: Go's centrifuge (Debian's package, pinned in the build script) beside
# StudyBuddy, same client, one sitting. YARDSTICK_ARGS e.g. "fanout --rounds 3 --duration 20".
.PHONY: yardstick
yardstick: $(STAMP)
	loadtests/yardstick/build.sh
	$(BIN)/python -m loadtests.yardstick $(YARDSTICK_ARGS)

# The README's pictures of the web app (a node on the embedded default, Debian's Chromium).
.PHONY: screenshot
screenshot: $(STAMP)
	$(BIN)/python -m scripts.webapp_screenshot
# Load testing (README "Load testing"): Locust lives in its own venv, never in .venv.
USERS      ?= 200
SPAWN_RATE ?= 2
DURATION   ?= 3m
SCENARIO   ?= mixed
CODEC      ?= both
PROFILE    ?= 0
BCRYPT_ROUNDS ?= 12
LOADTEST_ARGS ?=
# HOST=http://127.0.0.1:8080 targets a running (seeded) deployment; otherwise one is started.
LOAD_HOST  := $(if $(findstring ://,$(HOST)),$(HOST),)

$(LOAD_STAMP): requirements/load.txt
	test -x $(LOAD_VENV)/bin/python || $(PYTHON) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(LOAD_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/load.txt
	touch $(LOAD_STAMP)

load-install: $(LOAD_STAMP)

loadtest: $(STAMP) $(LOAD_STAMP)
	$(BIN)/python -m loadtests.loadtest --host '$(LOAD_HOST)' --users $(USERS) \
		--spawn-rate $(SPAWN_RATE) --duration $(DURATION) --scenario $(SCENARIO) \
		--codec $(CODEC) --profile $(PROFILE) --bcrypt-rounds $(BCRYPT_ROUNDS) $(LOADTEST_ARGS)

loadtest-smoke:
	$(MAKE) loadtest SCENARIO=mixed USERS=50 SPAWN_RATE=5 DURATION=30s BCRYPT_ROUNDS=10

lock-load:
	$(BIN)/pip-compile --quiet --extra load --generate-hashes --no-emit-index-url \
		--no-emit-find-links --strip-extras --allow-unsafe -o requirements/load.txt pyproject.toml

# Read replicas (docs/operations/read-replicas.md): what read-your-writes costs on a real
# streaming replica started for the run (ADR 0017's figures).
.PHONY: replica-latency
replica-latency: $(STAMP)
	$(BIN)/python -m scripts.replica_latency $(REPLICA_LATENCY_ARGS)

# The OpenAPI document against one node (issue 16): schemathesis with every check, 25 examples
# per operation, all four phases (stateful included), signed in. Its own venv and lock
# (requirements/schemathesis.in/.txt), away from the application's dependencies.
# SCHEMATHESIS_SEED pins the generated data (CI); SCHEMATHESIS_SEED= explores anew.
ST_VENV := .venv-st
SCHEMATHESIS_SEED ?= 16
.PHONY: schemathesis schemathesis-lock

$(ST_VENV)/.installed: requirements/schemathesis.txt
	test -x $(ST_VENV)/bin/python || $(PYTHON) -m venv $(ST_VENV)
	$(ST_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(ST_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/schemathesis.txt
	touch $@

schemathesis: $(STAMP) $(ST_VENV)/.installed
	$(BIN)/python -m scripts.api_node --sign-in -- sh -c '$(ST_VENV)/bin/schemathesis \
		--config-file tools/schemathesis/schemathesis.toml run "$$STUDYBUDDY_URL/openapi.json" \
		--checks all --max-examples 25 --phases examples,coverage,fuzzing,stateful --no-color \
		$(if $(SCHEMATHESIS_SEED),--seed $(SCHEMATHESIS_SEED)) $(SCHEMATHESIS_ARGS)'

schemathesis-lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --no-emit-index-url --no-emit-find-links \
		--strip-extras --allow-unsafe -o requirements/schemathesis.txt requirements/schemathesis.in

# The Postman collection (clients/postman/, generated from the OpenAPI document by
# scripts/postman.py) run by newman (tools/newman/, locked) against a node started for it.
# newman has no network but the node's port (scripts/loopback_only.py). The run must pass
# every test, and sign in and refresh through the collection's pre-request script (the
# refresh margin of the token's whole life makes every later request refresh first).
NEWMAN := tools/newman/node_modules/.bin/newman
.PHONY: postman postman-collection

tools/newman/node_modules/.installed: tools/newman/package.json tools/newman/package-lock.json
	cd tools/newman && npm ci --no-audit --no-fund --loglevel=error
	touch $@

postman-collection: $(STAMP)
	$(BIN)/python -m scripts.postman

postman: $(STAMP) tools/newman/node_modules/.installed
	$(BIN)/python -m scripts.postman --check
	$(BIN)/python -m scripts.api_node --sign-in --loopback-only -- sh -c '$(NEWMAN) run \
		clients/postman/studybuddy.postman_collection.json \
		-e clients/postman/studybuddy.postman_environment.json --working-dir clients/postman \
		--env-var "baseUrl=$$STUDYBUDDY_URL" --env-var "email=$$STUDYBUDDY_EMAIL" \
		--env-var "password=$$STUDYBUDDY_PASSWORD" --env-var "friend_id=$$STUDYBUDDY_FRIEND_ID" \
		--env-var "webhookUrl=http://127.0.0.1:9/studybuddy" --env-var expectFlow=true \
		--env-var refreshMarginS=3600 --export-environment .newman-environment.json \
		--color off --disable-unicode \
		&& $(BIN)/python -m scripts.postman --verify-run .newman-environment.json'
	rm -f .newman-environment.json
