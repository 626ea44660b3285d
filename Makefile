# Replica — the user's interface. `make reproduce-simsiam` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT        ?= swift
PROFILE      ?= default
# DATASET=path/to/file.h5 runs an experiment on another dataset file (same layout).
DATASET      ?=
# SEEDS=3 runs seeds 0, 1 and 2 and writes the aggregate (verdicts over seeds) to results/<name>/<profile>-seeds3/.
SEEDS        ?=
# Alternating rounds of `make bench-vs-torch` (each ratio is the median over them).
ROUNDS       ?= 5
RUN_FLAGS     = --profile $(PROFILE) $(if $(DATASET),--dataset $(DATASET)) $(if $(SEEDS),--seeds $(shell seq -s, 0 $$(($(SEEDS) - 1))))
DEB_PACKAGES := libhdf5-dev libpng-dev libopenblas-dev libblis4-serial libopenmpi-dev openmpi-bin pkg-config dataset-fashion-mnist
# XCTest only: the suite has no Swift Testing tests, whose empty summary would close the log.
TEST_FLAGS   := -c release --disable-swift-testing
REPLICA      := .build/release/replica
# A Python that can import torch, for `make bench-vs-torch` (see README).
TORCH_PYTHON ?= python3
# Every experiment has `make reproduce-<name>` (its PROFILE, SEEDS, DATASET); a new method adds its name here.
METHODS      := supervised simsiam simclr supcon pcl deepcluster nat ranked-list-loss factorvae lvae
REPRODUCE    := $(addprefix reproduce-,$(METHODS))

.PHONY: help deps build test bench bench-vs-torch bench-mpi baseline data pictures $(REPRODUCE) reproduce-all leaderboard compare readme-table clean

help:
	@echo "make reproduce-simsiam   deps, build, data, train SimSiam, write results/simsiam/ (PROFILE=$(PROFILE))"
	@echo "make test                build and run the test suite"
	@echo "make reproduce-simclr    SimCLR: temperature, projection head, h vs z → results/simclr/"
	@echo "make reproduce-supcon    SupCon: L_out vs L_in, vs cross-entropy, vs SimCLR (reads results/simclr/) → results/supcon/"
	@echo "make reproduce-pcl       PCL: prototypes vs MoCo, estimated vs fixed concentration → results/pcl/"
	@echo "make reproduce-deepcluster  DeepCluster: NMI curves, k = 100 vs k = 10 → results/deepcluster/"
	@echo "make reproduce-nat       NAT: reassignment period, noise vs one-hot targets → results/nat/"
	@echo "make reproduce-ranked-list-loss  RLL vs contrastive, triplet, Multi-Similarity on unseen classes → results/ranked-list-loss/"
	@echo "make reproduce-factorvae FactorVAE vs β-VAE on dSprites: the disentanglement/reconstruction trade-off → results/factorvae/"
	@echo "make reproduce-lvae      Ladder VAE vs VAEs of 1 and 3 layers (BatchNorm, warm-up) on binarised Fashion-MNIST → results/lvae/"
	@echo "make reproduce-supervised  the supervised reference row through the Harness → results/supervised/\$$PROFILE/"
	@echo "make reproduce-all       every experiment that has landed"
	@echo "make reproduce-X SEEDS=3 seeds 0..2 of experiment X and the aggregate with verdicts over seeds → results/X/\$$PROFILE-seeds3/"
	@echo "make leaderboard         every method's main arm at the family's equal budget (skips up-to-date rows), then compare"
	@echo "make compare             results/README.md: leaderboards, the claims ledger, stale-row flags"
	@echo "make deps                install missing Debian packages: $(DEB_PACKAGES)"
	@echo "make build               release build"
	@echo "make bench               time the engine on the reference workloads → results/bench/engine.{json,md}"
	@echo "make bench-vs-torch      the same workloads beside PyTorch (TORCH_PYTHON=python with torch)"
	@echo "make bench-mpi           training throughput at 1 and 2 MPI ranks → results/bench/mpi.{json,md}"
	@echo "make data                data/fashion-mnist.h5 and data/dsprites.h5"
	@echo "make pictures            results/datasets/*.png: augmented views and the dSprites factors"
	@echo "make readme-table        copy the SimSiam claims table over seeds (results/simsiam/default-seeds3/) into README.md"

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

# The data files come first: tests read them back against their sources. The kernels check
# every computed offset against its buffer during the tests (REPLICA_BOUNDS_CHECKS=1).
test: data
	REPLICA_BOUNDS_CHECKS=1 $(SWIFT) test $(TEST_FLAGS)

bench: build
	$(REPLICA) bench

bench-vs-torch: build
	@$(TORCH_PYTHON) -c "import torch" 2>/dev/null || { \
	  echo "make bench-vs-torch: '$(TORCH_PYTHON)' cannot import torch; make a virtualenv with torch and numpy and pass TORCH_PYTHON=/path/to/venv/bin/python (README: Benchmarks)" >&2; exit 1; }
	$(TORCH_PYTHON) bench/vs_torch.py --replica $(REPLICA) --rounds $(ROUNDS)

# Throughput at 1 and 2 MPI ranks (1 thread each) and at 1 rank × 2 threads → results/bench/mpi.{json,md}.
bench-mpi: data
	python3 bench/mpi.py --replica $(REPLICA)

data: build data/fashion-mnist.h5 data/dsprites.h5

data/fashion-mnist.h5:
	$(REPLICA) data fashion-mnist --out $@

data/dsprites.h5:
	$(REPLICA) data dsprites --out $@

pictures: data
	$(REPLICA) data pictures --out results/datasets

baseline: reproduce-supervised

# SupCon's C-SUP2b reads SimCLR's τ = 0.2 arm from results/simclr/ at the same profile and seed
# (committed for default and SEEDS=3; otherwise run reproduce-simclr first).
$(REPRODUCE): reproduce-%: build data
	$(REPLICA) run $* $(RUN_FLAGS)

reproduce-all: $(REPRODUCE)

compare: build
	$(REPLICA) compare

# Each landed method's `leaderboard` profile (its main arm at the family's shared budget);
# rows whose results are up to date are kept. Ends with `compare`.
leaderboard: build data
	$(REPLICA) leaderboard

# The SimSiam claims over seeds on README's first screen, copied from the committed aggregate.
README_TABLE := results/simsiam/default-seeds3
readme-table:
	python3 -c "import json, sys; d = sys.argv[1]; t = open(d + '/table.md').read(); s = json.load(open(d + '/summary.json')); \
	claims = t[t.index('| id |'):t.index('## Arms')].strip(); \
	prov = '- seeds ' + ', '.join(str(p['seed']) + ' at \`' + p['commit'][:10] + '\`' for p in s['per_seed']) + ' (' + d + ')'; \
	r = open('README.md').read(); a = '<!-- simsiam-claims: copied from ' + d + '/table.md by \`make readme-table\` -->'; b = '<!-- end simsiam-claims -->'; \
	open('README.md', 'w').write(r[:r.index(a) + len(a)] + chr(10) + claims + chr(10) + chr(10) + prov + chr(10) + r[r.index(b):])" $(README_TABLE)

clean:
	rm -rf .build
