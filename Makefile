# Replica — the user's interface. `make reproduce-simsiam` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT        ?= swift
PROFILE      ?= default
DEB_PACKAGES := libhdf5-dev libpng-dev libopenblas-dev pkg-config dataset-fashion-mnist
# XCTest only: the suite has no Swift Testing tests, whose empty summary would close the log.
TEST_FLAGS   := -c release --disable-swift-testing

.PHONY: help deps build test reproduce-simsiam clean

help:
	@echo "make reproduce-simsiam   deps, build, data, train SimSiam, write results/simsiam/ (PROFILE=$(PROFILE))"
	@echo "make test                build and run the test suite"
	@echo "make deps                install missing Debian packages: $(DEB_PACKAGES)"
	@echo "make build               release build"

# Installs whichever Debian packages are missing (one apt-get update, then one install).
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "make deps: missing Debian packages:$$missing" >&2; \
	  echo "make deps: installing them needs root: run 'sudo make deps' (or sudo apt-get install$$missing)" >&2; \
	  exit 1; \
	fi; \
	echo "make deps: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { echo "make deps: apt-get failed to install$$missing" >&2; exit 1; }

build: deps
	$(SWIFT) build -c release

test: deps
	$(SWIFT) test $(TEST_FLAGS)

reproduce-simsiam: deps
	@echo "make reproduce-simsiam: not built yet — SimSiam (issue #7) has not landed, so nothing was trained and no results were written." >&2
	@exit 2

clean:
	rm -rf .build
