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
INTERFACE_TITLES = {"no_bprop": "No Bprop", "bprop": "Bprop", "dni": "DNI", "cdni": "cDNI"}
# Which of our datasets stand in for each column family of Table 1.
TABLE1_FAMILIES = {"mnist": "MNIST", "mnist_5k": "MNIST", "cifar10": "CIFAR-10"}
