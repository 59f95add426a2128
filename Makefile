# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates or refreshes .venv as needed and installs Debian's Fashion-MNIST if it is missing.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUN_DIR ?= runs/demo

.PHONY: demo test data bench clean

# torch==2.13.0 is the local CPU wheel on the project's machines; elsewhere it is a normal torch install.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet "torch==2.13.0" || $(PYTHON) -m pip install --quiet torch
	$(PYTHON) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

data:
	@test -d $(FASHION_MNIST) || { echo "installing Debian's dataset-fashion-mnist"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

demo: $(STAMP) data
	$(VENV)/bin/effscale scale efficientnet-b0 --official --phi 0,1,2,3,4,5,6,7

test: $(STAMP) data
	$(VENV)/bin/pytest -q

bench: $(STAMP) data
	$(PYTHON) -m effscale.experiments.benchmarks.count_speed

clean:
	rm -rf $(VENV) runs
