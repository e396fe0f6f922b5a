# pgparity — every set-up step lives here, so a fresh clone needs only `make demo` / `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_BINDIR ?= $(shell ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create .venv with pgparity (editable) and the dev tools

.PHONY: postgres
postgres: ## install PostgreSQL server binaries (postgresql-15) when missing
	@scripts/ensure-postgres.sh

.PHONY: lint
lint: install ## ruff, mypy --strict, import layering
	$(BIN)/ruff check operator tests bench demo hack
	$(BIN)/ruff format --check operator tests bench demo hack
	$(MAKE) --no-print-directory mypy
	$(BIN)/lint-imports

.PHONY: mypy
mypy: install ## mypy --strict: the package, then the tests (pyproject says what tests may skip)
	$(BIN)/mypy
	MYPYPATH=operator:tests $(BIN)/mypy --strict --explicit-package-bases tests

.PHONY: test-unit
test-unit: install ## pure tests, no services
	$(BIN)/pytest -m unit

.PHONY: gitops-tools
gitops-tools: ## build (or reuse from ~/.cache/pgparity) argocd-health, promtool/prometheus, helm, prometheus-operator CRDs
	@scripts/gitops-tools.sh all

.PHONY: test-tools
test-tools: install gitops-tools ## Argo CD health checks, alert rules, chart, dashboard with their real tools
	$(BIN)/pytest -m tools

.PHONY: test-pg
test-pg: install postgres s3-assets ## tests against real PostgreSQL (and the S3-compatible server)
	$(BIN)/pytest -m pg

.PHONY: test-kube
test-kube: install kube-assets ## tests against a real kube-apiserver + etcd + controller-manager
	$(BIN)/pytest -m kube

.PHONY: test
test: install postgres kube-assets gitops-tools s3-assets ## install everything, lint, run every test tier (node last)
	$(MAKE) lint
	$(BIN)/pytest -m "not node"
	$(MAKE) test-node

# --- the S3-compatible server of the archive tests (tests/fix_s3.py, scripts/s3-assets.sh) ----
.PHONY: s3-assets
s3-assets: ## build (or reuse from ~/.cache/pgparity) versitygw, the archive tests' S3 server
	@scripts/s3-assets.sh >/dev/null

# --- the Kubernetes test control plane (tests/kubeplane.py, scripts/kube-assets.sh) ---------
KUBE_STATE ?= .kube/plane

.PHONY: kube-assets
kube-assets: ## build (or reuse from ~/.cache/pgparity) etcd, kube-apiserver, kcm, kubectl
	@scripts/kube-assets.sh >/dev/null

.PHONY: kube-up
kube-up: kube-assets ## start a control plane in the background; kubeconfig in .kube/plane/
	$(PYTHON) tests/kubeplane.py up --state-dir $(KUBE_STATE)

.PHONY: kube-down
kube-down: ## stop the control plane started by kube-up and remove its state
	$(PYTHON) tests/kubeplane.py down --state-dir $(KUBE_STATE)

# --- the node tier: a real kubelet in a network namespace (tests/nodeplane.py) ----------------
NODE_STATE ?= .kube/node
IMAGES_LIST := .kube/images.list

.PHONY: node-deps
node-deps: ## install containerd, runc, CNI plugins, iptables, conntrack, mmdebstrap, buildah
	@scripts/node-deps.sh

.PHONY: node-assets
node-assets: kube-assets ## build (or reuse) kubelet, kube-proxy, kube-scheduler, CoreDNS, crictl, helm
	@scripts/kube-assets.sh build node >/dev/null
	@scripts/kube-assets.sh build helm >/dev/null

.PHONY: images
images: node-deps ## build (or reuse) the pause, PostgreSQL and pgparity images, offline
	@mkdir -p .kube
	@scripts/images.sh >$(IMAGES_LIST).tmp && mv $(IMAGES_LIST).tmp $(IMAGES_LIST)

.PHONY: image
image: ## the pgparity image from the Dockerfile: with docker if it runs, else with buildah
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker build -t pgparity:$(VERSION) .; \
	else \
	  scripts/node-deps.sh && scripts/images.sh pgparity; \
	fi

.PHONY: node-up
node-up: node-deps node-assets images ## start a one-node cluster in its own network namespace
	$(PYTHON) tests/nodeplane.py up --state-dir $(NODE_STATE) --images $(IMAGES_LIST)

.PHONY: node-down
node-down: ## stop the node and remove everything it made (idempotent)
	$(PYTHON) tests/nodeplane.py down --state-dir $(NODE_STATE)

.PHONY: test-node
test-node: install node-deps node-assets images s3-assets ## the node tier alone: node-up, tests, node-down
	@scripts/test-node.sh

.PHONY: e2e-kind
e2e-kind: install images ## the node tests against a kind cluster (needs Docker; kind from Go)
	@scripts/e2e-kind.sh

.PHONY: demo
demo: install postgres ## validate the bundled migrations on a local primary + replica
	$(BIN)/python demo/run_demo.py

.PHONY: bench
bench: install postgres ## measure observer overhead and lock-wait detection (prints ratios)
	$(BIN)/python bench/bench_observer.py

.PHONY: bench-seed
bench-seed: install postgres ## masked and keep-all seeds vs pg_dump | pg_restore: paired ratios, source CPU s/GB
	$(BIN)/python bench/bench_seed.py

.PHONY: bench-archive
bench-archive: install postgres s3-assets ## snapshot to / restore from an S3-compatible store: MB/s, peak RSS
	$(BIN)/python bench/bench_archive.py

.PHONY: bench-scale
bench-scale: install postgres ## migrations of 1k/2k/4k statements: time, per-statement ratio, peak RSS
	$(BIN)/python bench/bench_scale.py

CORPUS ?=

.PHONY: bench-lint
bench-lint: install ## pgparity lint vs squawk on a migration corpus (make bench-lint CORPUS=DIR; README)
	@test -n "$(CORPUS)" || { echo "usage: make bench-lint CORPUS=DIR (see README, Lint)"; exit 2; }
	$(BIN)/python bench/lint_corpus.py --corpus $(CORPUS)

.PHONY: bench-lint-trace
bench-lint-trace: install postgres ## the corpus's lint findings judged on a clone with volume (CORPUS=DIR; README)
	@test -n "$(CORPUS)" || { echo "usage: make bench-lint-trace CORPUS=DIR (see README, Lint)"; exit 2; }
	$(BIN)/python bench/lint_corpus_trace.py --corpus $(CORPUS)

.PHONY: bench-operator
bench-operator: install postgres kube-assets ## the operator at 10/100/500 validations + 5/20/100 clones
	$(BIN)/python bench/bench_operator.py

.PHONY: manifests
manifests: install ## regenerate deploy/, the Helm chart, the dashboard and the argocd-cm/rule files
	sed -i -e 's/^version: .*/version: $(VERSION)/' -e 's/^appVersion: .*/appVersion: "$(VERSION)"/' \
	  charts/pgparity/Chart.yaml
	sed -i 's|^image: ghcr.io/pgparity/pgparity:.*|image: ghcr.io/pgparity/pgparity:$(VERSION)|' \
	  charts/pgparity/values.yaml
	$(BIN)/pgparity render rbac > deploy/operator-rbac.yaml
	$(BIN)/pgparity render operator > deploy/operator.yaml
	$(BIN)/pgparity render rbac --helm > charts/pgparity/templates/rbac.yaml
	$(BIN)/pgparity render operator --helm > charts/pgparity/templates/operator.yaml
	cp crds/*.yaml charts/pgparity/crds/
	$(BIN)/python hack/dashboard/generate.py
	$(BIN)/python hack/gitops/render.py "$$(scripts/gitops-tools.sh helm)"

.PHONY: clean
clean: ## remove build outputs (not caches outside the tree)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache operator/*.egg-info
