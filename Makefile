# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates or refreshes .venv as needed and installs Debian's Fashion-MNIST if it is missing.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUN_DIR ?= runs/demo

.PHONY: demo test data bench lint clean

# torch==2.13.0 is the local CPU wheel on the project's machines; elsewhere it is a normal torch install.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet "torch==2.13.0" || $(PYTHON) -m pip install --quiet torch
	$(PYTHON) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

data:
	@test -d $(FASHION_MNIST) || { echo "installing Debian's dataset-fashion-mnist"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

# The main job: Step 1 (a small grid search of alpha, beta, gamma on Fashion-MNIST), the B0..B7-style family
# from the coefficients found, then Step 2 (the family vs single-dimension scaling at matching MACs, plotted).
# About 5 minutes on 2 cores; rerunning resumes.
DEMO_TRAINING := --epochs 1 --subset 4000 --val-size 2000 --batch-size 64 --jobs 2
demo: $(STAMP) data
	$(VENV)/bin/effscale grid --out $(RUN_DIR)/grid --step 0.1 $(DEMO_TRAINING)
	$(VENV)/bin/effscale scale efficientnet-b0 --from $(RUN_DIR)/grid --phi 0,1,2,3,4,5,6,7
	$(VENV)/bin/effscale family train $(RUN_DIR)/grid --phi 1,2 $(DEMO_TRAINING)
	@echo "plots and reports: $(RUN_DIR)/grid/report.md, $(RUN_DIR)/grid/family/report.md"

test: $(STAMP) data
	$(VENV)/bin/pytest -q

bench: $(STAMP) data
	$(PYTHON) -m effscale.experiments.benchmarks.count_speed

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs
