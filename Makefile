# The two commands of the README. Each does its own set-up from nothing and is idempotent; set-up prints one
# line per step it has to take and nothing when there is nothing to do.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# Debian packages the tests use: the data, PostgreSQL for the distributed-study tests, Chromium for the report test,
# SLURM and munge for the one-node cluster of the launcher tests (tests/slurm_cluster.py).
SYSTEM_PACKAGES := dataset-fashion-mnist postgresql chromium slurmctld slurmd slurm-client munge

.PHONY: demo test test-slurm test-all setup system-packages clean

demo: setup
	@$(PY) -m regnet_space.demo

test: setup system-packages
	@$(PY) -m pytest

# `study run --launcher slurm` on a real one-node SLURM cluster: minutes, so apart from `make test`; CI runs both.
test-slurm: setup system-packages
	@$(PY) -m pytest -m slow tests/test_slurm.py

test-all: setup system-packages
	@$(PY) -m pytest -m ''

setup: $(INSTALLED) $(FASHION_MNIST)

# One line per step, so a first run (a few minutes) never looks hung; the details go to $(VENV)/install.log.
$(INSTALLED): pyproject.toml
	@echo "set-up: creating $(VENV)"
	@python3 -m venv $(VENV)
	@set -o pipefail; log=$(VENV)/install.log; : > $$log; \
	step() { echo "set-up: $$1"; shift; "$$@" >> $$log 2>&1 \
	  || { tail -30 $$log; echo "make: $$* failed; see $$log" >&2; exit 1; }; }; \
	step "upgrading pip" $(PY) -m pip install --upgrade pip && \
	step "installing PyTorch (torch==2.13.0, CPU)" $(PY) -m pip install torch==2.13.0 && \
	step "installing regnet-space and its dependencies" $(PY) -m pip install -e '.[test,postgres]'
	@touch $@

$(FASHION_MNIST):
	@$(MAKE) --no-print-directory system-packages

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: need root to install Debian packages: $$missing" >&2; exit 1; fi; \
	  echo "set-up: installing Debian packages: $$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } > /tmp/regnet-space-apt.log 2>&1 \
	    || { tail -20 /tmp/regnet-space-apt.log; echo "make: apt-get install $$missing failed" >&2; exit 1; }; \
	fi

clean:
	rm -rf $(VENV) runs build *.egg-info
