# Two entry points for a fresh Debian machine: `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
# The binary links the Swift runtime and Foundation statically (Package.swift, the custos
# target), so it runs where the toolchain is not installed; jansson, OpenSSL and libsystemd stay
# Debian's shared libraries (docs/operations.md, "Packages").
SWIFTFLAGS := -c $(CONFIG)
BIN := .build/$(CONFIG)/custos
# systemd: systemd-socket-activate and systemd-analyze for the deployment tests; binutils:
# readelf, for the package dependency test; dpkg-dev:
# dpkg-deb for `make dist`; python3-venv: the Kubernetes manifest validator below.
APT_PACKAGES := libjansson-dev libssl-dev pkg-config python3 libmicrohttpd-dev curl nginx prometheus \
                libsystemd-dev systemd dpkg-dev python3-venv binutils
# Validates deploy/kubernetes offline: the package carries the Kubernetes OpenAPI JSON schemas.
DEPLOY_VENV := .build/deploy-venv
K8S_VALIDATOR := kubernetes-validate==1.37.0
# Fleet mode (docs/fleet.md): libpq to link, and a PostgreSQL server its integration tests start.
APT_PACKAGES += libpq-dev postgresql

.PHONY: deps build run test dist clean

# Installs what the build and the tests need, only when it is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@if [ ! -x $(DEPLOY_VENV)/bin/kubernetes-validate ]; then \
	  echo "installing $(K8S_VALIDATOR) into $(DEPLOY_VENV)"; \
	  python3 -m venv $(DEPLOY_VENV) && $(DEPLOY_VENV)/bin/pip install -q $(K8S_VALIDATOR); \
	fi

build: deps
	$(SWIFT) build $(SWIFTFLAGS)

# Serves the example policies on state/custos.sock and prints how to call it.
run: build
	$(BIN) serve --policies policies --state state

# Every test: unit, corpus, integration, deployment, conformance. Release mode so the corpus
# runs in seconds; the tests use only public and package API, so no @testable build is needed.
# Then the example policies: strictly valid against their schema (no warning either), and their
# conformance suites, which must exercise every policy and code.
test: build
	$(SWIFT) test $(SWIFTFLAGS) 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}
	$(BIN) check --strict --policies policies
	$(BIN) test --coverage --min-coverage 100 conformance/

# dist/: the Debian package, a binary tarball of the same tree, and a source tarball that
# builds without git. The version is stamped from git (deploy/stamp-version.sh) for this build
# only; BuildStamp.swift is restored afterwards.
dist: deps
	@set -e; \
	if git rev-parse --git-dir >/dev/null 2>&1; then trap 'git checkout -q -- Sources/CustosVersion/BuildStamp.swift' EXIT; fi; \
	deploy/stamp-version.sh write; version=$$(deploy/stamp-version.sh version); \
	$(SWIFT) build $(SWIFTFLAGS); \
	deploy/package.sh $(BIN) "$$version" dist; \
	if git rev-parse --git-dir >/dev/null 2>&1; then \
	  src=$$(mktemp -d); \
	  git archive --format=tar --prefix=custos-$$version/ HEAD | tar -x -C $$src; \
	  cp Sources/CustosVersion/BuildStamp.swift $$src/custos-$$version/Sources/CustosVersion/; \
	  tar -C $$src --owner=0 --group=0 --numeric-owner -czf dist/custos-$$version-src.tar.gz custos-$$version; \
	  rm -rf $$src; echo dist/custos-$$version-src.tar.gz; \
	fi

clean:
	rm -rf .build dist
