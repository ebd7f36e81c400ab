"""Numbers printed in the papers, kept apart from anything we measure."""

# Jaderberg et al. 2016, Table 1: final test error (%) after 500k iterations.
# Keyed by (dataset family, model, depth) -> {interface: error}.
TABLE1 = {
    ("MNIST", "fcn", 3): {"no_bprop": 9.3, "bprop": 2.0, "dni": 1.9, "cdni": 2.2},
    ("MNIST", "fcn", 4): {"no_bprop": 12.6, "bprop": 1.8, "dni": 2.2, "cdni": 1.9},
    ("MNIST", "fcn", 5): {"no_bprop": 16.2, "bprop": 1.8, "dni": 3.4, "cdni": 1.7},
    ("MNIST", "fcn", 6): {"no_bprop": 21.4, "bprop": 1.8, "dni": 4.3, "cdni": 1.6},
    ("MNIST", "cnn", 3): {"no_bprop": 0.9, "bprop": 0.8, "dni": 0.9, "cdni": 1.0},
    ("MNIST", "cnn", 4): {"no_bprop": 2.8, "bprop": 0.6, "dni": 0.7, "cdni": 0.8},
    ("CIFAR-10", "fcn", 3): {"no_bprop": 54.9, "bprop": 43.5, "dni": 42.5, "cdni": 48.5},
    ("CIFAR-10", "fcn", 4): {"no_bprop": 57.2, "bprop": 43.0, "dni": 45.0, "cdni": 45.1},
    ("CIFAR-10", "fcn", 5): {"no_bprop": 59.6, "bprop": 41.7, "dni": 46.9, "cdni": 43.5},
    ("CIFAR-10", "fcn", 6): {"no_bprop": 61.9, "bprop": 42.0, "dni": 49.7, "cdni": 46.8},
    ("CIFAR-10", "cnn", 3): {"no_bprop": 28.7, "bprop": 17.9, "dni": 19.5, "cdni": 19.0},
    ("CIFAR-10", "cnn", 4): {"no_bprop": 38.1, "bprop": 15.7, "dni": 19.5, "cdni": 16.4},
}

TABLE1_INTERFACES = ("no_bprop", "bprop", "dni", "cdni")
INTERFACE_TITLES = {
    "no_bprop": "No Bprop",
    "bprop": "Bprop",
    "dni": "DNI",
    "cdni": "cDNI",
    "fa": "FA",
    "dfa": "DFA",
    "kickback": "Kickback",
}
# Which of our datasets stand in for each column family of Table 1.
TABLE1_FAMILIES = {"mnist": "MNIST", "mnist_5k": "MNIST", "cifar10": "CIFAR-10"}

# Section 3.1 and appendix A.2: the feed-forward studies. The paper prints few of
# these as numbers; where it only states a finding, the finding is quoted as text.
FIG5_FINDINGS = {
    "sparse_dni": "p_update = 0.2 still trains to about 2% error (4-layer MNIST FCN)",
    "sparse_cdni": "cDNI trains \"perfectly\" with p_update = 0.05, only slower",
    "unlock": "completely unlocked layers co-learn to about 2% error, slightly slower",
}
# Fig. 9a / A.2, 6-layer MNIST FCN: only the end points are given in the text.
FIG9_BPROP = 1.6
FIG9_SINGLE_DNI = {1: 1.8, 5: 3.4}
FIG9_CUT = {1: 2.9, 5: 23.7}
# Best error of the exponential moving average of stale gradients, by FCN depth.
STALE_BEST = {3: 9.1, 4: 11.8, 5: 15.4, 6: 19.0}
# "we successfully trained up to 21 layer FCNs with cDNI to 2% error (the same as with using backpropagation)"
DEEP_CDNI = {"depth": 21, "cdni": 2.0, "bprop": 2.0}

# Table 2 (Jaderberg et al. 2016): largest episode length T_task solved (Copy, Repeat
# Copy) and test bits per character at the best validation point (Penn Treebank),
# keyed by row -> interface -> unroll length T. "-" cells of the paper are absent.
TABLE2 = {
    "copy": {
        "bptt": {2: 7, 3: 8, 4: 10, 5: 8},
        "dni": {2: 16, 3: 14, 4: 18, 5: 18},
        "dni_aux": {2: 16, 3: 17, 4: 19, 5: 18},
    },
    "repeat_copy": {
        "bptt": {2: 7, 3: 5, 4: 19, 5: 23},
        "dni": {2: 39, 3: 33, 4: 39, 5: 59},
        "dni_aux": {2: 39, 3: 59, 4: 67, 5: 59},
    },
    "lm": {
        "bptt": {2: 1.39, 3: 1.38, 4: 1.37, 5: 1.37, 8: 1.35, 20: 1.35, 40: 1.34},
        "dni": {2: 1.37, 3: 1.36, 4: 1.35, 5: 1.35, 8: 1.34},
        "dni_aux": {2: 1.37, 3: 1.36, 4: 1.35, 5: 1.35, 8: 1.33},
    },
}
RECURRENT_TITLES = {"bptt": "BPTT", "dni": "DNI", "dni_aux": "DNI + Aux"}
# Section 3.2: DNI+Aux with T=5 reaches the BPC of BPTT with T=20 (1.35) with 58% of
# the data and in half the wall-clock time.
TIME_TO_TARGET = {"target_bpc": 1.35, "data_fraction": 0.58, "time_speedup": 2.0}

# Section 3.3 and Fig. 8 (T = 4): the paper prints no numbers for the multi-network
# system, only these findings, quoted per regime.
FIG8_TITLES = {"e2e": "End-to-end (e2e)", "dni": "DNI", "decoupled_no_dni": "Decoupled, no DNI"}
FIG8_FINDINGS = {
    "a_speed": "decoupled A (DNI or not) reaches its final error in under half the steps of e2e A",
    "b_dni": "B with DNI trains faster than e2e and reaches a similar final accuracy",
    "b_no_dni": "B without DNI performs poorly: A gets no feedback on what to send",
}

# Appendix A.1: SG hidden layers chosen by a search over 0-2 (on test error), per experiment type.
SG_HIDDEN_LAYERS_CHOSEN = {("MNIST", "fcn", "dni"): 2, ("MNIST", "fcn", "cdni"): 0}
