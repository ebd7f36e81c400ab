# dni-repro: every entry point a researcher needs. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Run length for the table targets: quick (CPU, default), paper (appendix A.1), smoke.
PROFILE ?= quick
# Dataset behind the MNIST column: mnist (real, downloaded or dataset.root) or mnist_5k (embedded).
MNIST ?= mnist
ARGS ?=
# The demo's sweep folder, named here so the report step can find it (random tag: no collisions).
DEMO_DIR := logs/demo/multiruns/$(shell date +%Y-%m-%d_%H-%M-%S)_$(shell od -An -N3 -tx1 /dev/urandom | tr -d ' \n')

.PHONY: help install demo test bench table1 table1-mnist-fcn table1-mnist-cnn table1-cifar10-fcn table1-cifar10-cnn table1-report clean-logs

help:
	@echo "make demo     set up, train Bprop/DNI/cDNI on the embedded MNIST digits, print a table, plot curves"
	@echo "make test     set up and run the test suite"
	@echo "make table1   Table 1 grid (PROFILE=quick|paper, MNIST=mnist|mnist_5k), then results/table1.md"
	@echo "make bench    suite training step vs a minimal PyTorch loop"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[dev,launchers]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) train.py -m experiment=demo interface=bprop,dni,cdni hydra.sweep.dir=$(DEMO_DIR) $(ARGS)
	$(PY) scripts/compare_runs.py $(DEMO_DIR) --png $(DEMO_DIR)/curves.png

test: install
	WANDB_MODE=disabled $(PY) -m pytest -q tests

bench: install
	$(PY) scripts/bench_ff.py

# Each column preset sweeps its depths; table1-report collects every finished run.
FCN_DEPTHS := 3,4,5,6
CNN_DEPTHS := 3,4
INTERFACES := bprop no_bprop dni cdni

table1-mnist-fcn: install
	for i in $(INTERFACES); do $(PY) train.py -m experiment=table1_mnist_fcn_$$i profile=$(PROFILE) dataset=$(MNIST) model.depth=$(FCN_DEPTHS) $(ARGS) || exit 1; done

table1-mnist-cnn: install
	for i in $(INTERFACES); do $(PY) train.py -m experiment=table1_mnist_cnn_$$i profile=$(PROFILE) dataset=$(MNIST) model.depth=$(CNN_DEPTHS) $(ARGS) || exit 1; done

table1-cifar10-fcn: install
	for i in $(INTERFACES); do $(PY) train.py -m experiment=table1_cifar10_fcn_$$i profile=$(PROFILE) model.depth=$(FCN_DEPTHS) $(ARGS) || exit 1; done

table1-cifar10-cnn: install
	for i in $(INTERFACES); do $(PY) train.py -m experiment=table1_cifar10_cnn_$$i profile=$(PROFILE) model.depth=$(CNN_DEPTHS) $(ARGS) || exit 1; done

table1-report: install
	$(PY) scripts/make_table1.py --logs logs/table1 --out results/table1.md --png results/table1_mnist_fcn_curves.png

table1: table1-mnist-fcn table1-mnist-cnn table1-cifar10-fcn table1-cifar10-cnn table1-report

clean-logs:
	rm -rf logs
