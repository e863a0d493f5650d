# Two entry points for a fresh Debian machine: `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
BIN := .build/$(CONFIG)/custos
APT_PACKAGES := libjansson-dev libssl-dev pkg-config python3 libmicrohttpd-dev curl nginx prometheus
# Fleet mode (docs/fleet.md): libpq to link, and a PostgreSQL server its integration tests start.
APT_PACKAGES += libpq-dev postgresql

.PHONY: deps build run test clean

# Installs the Debian packages the build links against, only when they are missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG)

# Serves the example policies on state/custos.sock and prints how to call it.
run: build
	$(BIN) serve --policies policies --state state

# Every test: unit, corpus, integration, conformance. Release mode so the corpus runs in seconds;
# the tests use only public and package API, so no @testable build is needed.
# Then the example policies: strictly valid against their schema (no warning either), and their
# conformance suites, which must exercise every policy and code.
test: build
	$(SWIFT) test -c $(CONFIG) 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}
	$(BIN) check --strict --policies policies
	$(BIN) test --coverage --min-coverage 100 conformance/

clean:
	rm -rf .build
