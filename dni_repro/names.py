"""Names shared by the models, the experiments and the config schema.

They live apart from `config.py` so that models can take them as plain arguments
without importing the Hydra schema.
"""
from enum import Enum


class Name(str, Enum):
    """A name that reads as its value wherever it is formatted (f-strings, config interpolation)."""

    def __str__(self) -> str:
        return self.value


class Task(Name):
    feedforward = "feedforward"  # section 3.1: classifiers with DNIs between layers
    copy = "copy"  # section 3.2: Copy and Repeat Copy with a curriculum
    language_model = "language_model"  # section 3.2: character-level language modelling
    multi_network = "multi_network"  # section 3.3: two RNNs ticking at different rates (Fig. 8)


RECURRENT_TASKS = (Task.copy, Task.language_model)


class ModelName(Name):
    fcn = "fcn"
    cnn = "cnn"
    lstm = "lstm"
    two_rnn = "two_rnn"  # Networks A and B of section 3.3 (A.4)


class Activation(Name):
    """Hidden-layer nonlinearity of model=fcn."""

    relu = "relu"
    tanh = "tanh"


class InterfaceName(Name):
    bprop = "bprop"
    no_bprop = "no_bprop"
    dni = "dni"
    cdni = "cdni"
    stale = "stale"  # moving average of past gradients, the baseline of section 3.1
    fa = "fa"  # Feedback Alignment: fixed random matrices in place of the receivers' weights in the backward pass
    dfa = "dfa"  # Direct Feedback Alignment: the output error through a fixed random matrix to each layer
    kickback = "kickback"  # Kickback: a scalar output error, backpropagated through one receiver layer
    bptt = "bptt"  # recurrent: truncated BPTT, zero gradient at each truncation boundary
    dni_aux = "dni_aux"  # recurrent: dni plus the future-SG auxiliary task (Fig. 3b)
    e2e = "e2e"  # multi-network: A and B as one graph, unrolled T^2 steps per update
    decoupled_no_dni = "decoupled_no_dni"  # multi-network: A updates every T steps and hears nothing from B


# The recurrent tasks' interfaces (`dni` is shared with the feed-forward task).
RECURRENT_INTERFACES = (InterfaceName.bptt, InterfaceName.dni, InterfaceName.dni_aux)

# The multi-network regimes of Fig. 8 (`dni`: A learns from B's synthetic gradient on its message).
MULTI_NETWORK_INTERFACES = (InterfaceName.e2e, InterfaceName.dni, InterfaceName.decoupled_no_dni)



class OptimizerName(Name):
    adam = "adam"
    sgd = "sgd"


class LoggerName(Name):
    none = "none"
    wandb = "wandb"


class WandbMode(Name):
    auto = "auto"  # online with credentials, otherwise offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


class SGInput(Name):
    """What the recurrent SG model (and the aux head) read at a truncation boundary."""

    h = "h"  # the LSTM output, as the paper says (A.3)
    hc = "hc"  # output and cell state, as koz4k/dni-pytorch and neuralml/bp_lambda do


class SGTarget(Name):
    """The bootstrapped regression target of the recurrent SG model."""

    consumed = "consumed"  # the chunk's gradient with the SG as consumed (sg_scale x M): future chunks discounted
    unscaled = "unscaled"  # the chunk's gradient with M itself at its end: the sum of future gradients (eq. 3)
