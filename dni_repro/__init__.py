"""dni-repro: Decoupled Neural Interfaces (Jaderberg et al. 2016) and their analysis (Czarnecki et al. 2017)."""
__version__ = "0.1.0"
