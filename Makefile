# The two commands of the README. Each does its own set-up from nothing, is idempotent and quiet on success.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# Debian packages the tests use: the data, PostgreSQL for the distributed-study tests, Chromium for the report test.
SYSTEM_PACKAGES := dataset-fashion-mnist postgresql chromium

.PHONY: demo test test-all setup system-packages clean

demo: setup
	@$(PY) -m regnet_space.demo

test: setup system-packages
	@$(PY) -m pytest

test-all: setup system-packages
	@$(PY) -m pytest -m ''

setup: $(INSTALLED) $(FASHION_MNIST)

$(INSTALLED): pyproject.toml
	@python3 -m venv $(VENV)
	@set -o pipefail; { $(PY) -m pip install --upgrade pip && \
	  $(PY) -m pip install torch==2.13.0 && \
	  $(PY) -m pip install -e '.[test,postgres]'; } > $(VENV)/install.log 2>&1 \
	  || { tail -30 $(VENV)/install.log; echo "make: installing Python packages failed; see $(VENV)/install.log" >&2; exit 1; }
	@touch $@

$(FASHION_MNIST):
	@$(MAKE) --no-print-directory system-packages

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: need root to install Debian packages: $$missing" >&2; exit 1; fi; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } > /tmp/regnet-space-apt.log 2>&1 \
	    || { tail -20 /tmp/regnet-space-apt.log; echo "make: apt-get install $$missing failed" >&2; exit 1; }; \
	fi

clean:
	rm -rf $(VENV) runs build *.egg-info
