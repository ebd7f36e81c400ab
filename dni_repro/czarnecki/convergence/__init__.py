"""Experiment A of Czarnecki et al. 2017: do linear and deep linear models trained with
synthetic gradients reach the global optimum that backprop reaches?

models.py             the linear and the 10-hidden-layer deep linear model, split where the SG sits
synthetic_gradients.py  the label-conditioned linear SG and the sigmoid SG
training.py           losses, one full-batch gradient-descent run, the update SG training uses
optimum.py            the global optimum each run is measured against
grid.py               datasets x dims x models x losses x methods, one row per run
report.py             the markdown table, the sentences on what the runs show, the curves
"""
