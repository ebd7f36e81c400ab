"""Typed schema of the composed config, and value checks that types cannot express.

The schema is registered in Hydra's ConfigStore as `train_schema` (outside every
selectable group) and listed in `conf/train.yaml` right after `_self_`. Its
fields are MISSING wherever a YAML file supplies the value, so it contributes
types and the set of allowed keys, never values: an unknown key (`+model.dpeth=3`)
or a wrong type (`model.depth=four`) then fails while Hydra composes.
"""
import datetime
import os
import secrets
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dni_repro.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"
RUN_ID_VARIABLE = "DNI_REPRO_RUN_ID"


class Task(str, Enum):
    feedforward = "feedforward"  # section 3.1: classifiers with DNIs between layers
    copy = "copy"  # section 3.2: Copy and Repeat Copy with a curriculum
    language_model = "language_model"  # section 3.2: character-level language modelling
    multi_network = "multi_network"  # section 3.3: two RNNs ticking at different rates (Fig. 8)


RECURRENT_TASKS = (Task.copy, Task.language_model)


class ModelName(str, Enum):
    fcn = "fcn"
    cnn = "cnn"
    lstm = "lstm"
    two_rnn = "two_rnn"  # Networks A and B of section 3.3 (A.4)


class Activation(str, Enum):
    """Hidden-layer nonlinearity of model=fcn."""

    relu = "relu"
    tanh = "tanh"


class InterfaceName(str, Enum):
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

# Image datasets a multi-network digit stream can draw from.
DIGIT_SOURCES = ("mnist_5k", "mnist", "fashion_mnist")

# The multi-network regimes of Fig. 8 (`dni`: A learns from B's synthetic gradient on its message).
MULTI_NETWORK_INTERFACES = (InterfaceName.e2e, InterfaceName.dni, InterfaceName.decoupled_no_dni)


# Interfaces that emit a gradient of their own instead of passing the true one.
GRADIENT_EMITTING = (InterfaceName.dni, InterfaceName.cdni, InterfaceName.stale, InterfaceName.dfa, InterfaceName.kickback)

# The error-approximation methods of Czarnecki et al. (2017), section 5: fully connected models only.
FEEDBACK_ALIGNMENT_INTERFACES = (InterfaceName.fa, InterfaceName.dfa, InterfaceName.kickback)

FEEDFORWARD_INTERFACE_CHOICES = "interface=bprop|no_bprop|dni|cdni|stale|fa|dfa|kickback"


class OptimizerName(str, Enum):
    adam = "adam"
    sgd = "sgd"


class LoggerName(str, Enum):
    none = "none"
    wandb = "wandb"


class WandbMode(str, Enum):
    auto = "auto"  # online with credentials, otherwise offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class ModelConfig:
    name: ModelName = MISSING
    # Layers including the final linear classifier, as the paper counts them:
    # depth 4 = three hidden layers + classifier, hence three interfaces.
    depth: int = MISSING
    # Units per FCN hidden layer, or filters per CNN layer.
    width: int = MISSING
    # Default hidden width of the SG models on this model's activations (A.1, A.3).
    sg_width: int = MISSING
    # Default hidden layers of interface=dni's SG models: two for the feed-forward nets (A.1), one for the LSTM (A.3).
    sg_hidden_layers: int = MISSING
    # LSTM only: the diagonal peephole connections of Graves (2013).
    peepholes: bool = True
    # Default factor interface=dni applies to the synthetic gradient where it is consumed:
    # 0.1 for the recurrent LSTM (A.3), 10 on Network A's message (A.4).
    sg_scale: float = 0.1
    # two_rnn only: batch normalisation inside both LSTMs, after Cooijmans et al. (2016).
    recurrent_batch_norm: bool = True
    # fcn only: the hidden layers' nonlinearity (Czarnecki et al. 2017 compare two on deep MNIST nets).
    activation: Activation = Activation.relu


@dataclass
class ModelWidths:
    fcn: int = MISSING
    cnn: int = MISSING
    fcn_sg: int = MISSING
    cnn_sg: int = MISSING
    lstm: int = MISSING


@dataclass
class CopyTaskConfig:
    """Copy / Repeat Copy episodes and their curriculum (section 3.2, A.3)."""

    repeat: bool = False  # Repeat Copy: the sequence is written R times
    alphabet: int = 8  # distinct data symbols
    max_repeats: int = 64  # largest R the input vocabulary can express
    start_length: int = 1  # N at the first level
    start_repeats: int = 1  # R at the first level (Repeat Copy)
    # The level goes up once the running average error falls below this many bits per output step.
    threshold_bits: float = 0.15
    # Training steps (chunks) in that running average; it restarts at every new level.
    window_steps: int = 50


@dataclass
class DigitStreamConfig:
    """The multi-network task (section 3.3): a stream of digit images, one per time step per stream."""

    # Image dataset the digits are drawn from: mnist_5k (embedded), mnist or fashion_mnist.
    digits: str = "mnist_5k"
    # T: A counts odd digits over its last T inputs, B runs every T steps and counts 3s over T^2.
    period: int = 4
    # Time steps of each test stream; the test error covers every output in them.
    eval_length: int = 160


@dataclass
class DatasetConfig:
    # Which experiment module trains on this dataset.
    task: Task = MISSING
    name: str = MISSING
    # Folder holding the dataset's standard files; null means `${paths.data_dir}/<name>`.
    root: Optional[str] = MISSING
    download: bool = MISSING
    # Feed-forward datasets: (channels, height, width) for images, (features,) for vectors; [] for sequences.
    input_shape: list[int] = field(default_factory=list)
    num_classes: Optional[int] = None  # feed-forward datasets; sequence vocabularies come from the data
    # Paper widths for this dataset (A.1, A.3): the model group reads them by default.
    model_widths: ModelWidths = field(default_factory=ModelWidths)
    copy_task: CopyTaskConfig = field(default_factory=CopyTaskConfig)
    digit_stream: DigitStreamConfig = field(default_factory=DigitStreamConfig)
    # dataset=text: the UTF-8 file to model, and its train/valid/test fractions (in file order).
    path: Optional[str] = None
    split: list[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])


@dataclass
class SyntheticGradientConfig:
    hidden_layers: int = 2
    hidden_width: int = "${model.sg_width}"  # units (MLP) or channels (conv)
    kernel_size: int = 5  # conv SG models only


@dataclass
class SyntheticInputConfig:
    hidden_layers: int = 1  # A.1: one hidden layer for complete unlock
    hidden_width: int = "${model.sg_width}"


@dataclass
class InterfaceConfig:
    # cdni is dni whose SG models also see the one-hot label.
    name: InterfaceName = MISSING
    sg: SyntheticGradientConfig = field(default_factory=SyntheticGradientConfig)
    sg_loss_weight: float = 1.0
    # Boundaries (k = after layer k, 1-based) that get this interface; the others
    # get Bprop. null puts it on every boundary (Fig. 9: a single DNI, or DNI up to k).
    positions: Optional[list[int]] = None
    # Sparse updates (Fig. 5 left): after each forward pass every layer does its
    # backward pass and update with this probability. dni/cdni only.
    p_update: float = 1.0
    # Complete unlock (Fig. 5 right): every layer above the first reads a synthetic
    # input predicted from the data, and with probability 1 - p_update skips both passes.
    synthetic_inputs: bool = False
    input_model: SyntheticInputConfig = field(default_factory=SyntheticInputConfig)
    # interface=stale: weight of the old average in the moving average of gradients.
    stale_decay: float = 0.9
    # Recurrent dni/dni_aux: the factor applied to the synthetic gradient where it is consumed (A.3).
    sg_scale: float = 0.1
    # Recurrent dni/dni_aux: let the SG regression loss reach the LSTM core (A.3 searched over this).
    sg_loss_into_core: bool = False


@dataclass
class OptimizerConfig:
    name: OptimizerName = MISSING
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.0
    # The lr is multiplied by lr_decay_factor at each of these fractions of max_steps.
    lr_decay_at: list[float] = field(default_factory=list)
    lr_decay_factor: float = 0.1


@dataclass
class TrainerConfig:
    profile: str = MISSING
    max_steps: int = MISSING
    batch_size: int = MISSING
    eval_every: int = MISSING
    log_every: int = MISSING
    checkpoint_every: int = MISSING
    eval_batch_size: int = MISSING
    # Every this many steps, also measure the true backprop gradient at each
    # interface and log how far the synthetic gradient is from it (Fig. 10). 0: off.
    sg_quality_every: int = 0
    # Recurrent tasks: truncated BPTT unroll length T (one training step = T time steps).
    bptt_length: int = 5
    # Language modelling: stop after this many validations without a new best (0: never stop early).
    early_stopping_patience: int = 0


@dataclass
class LoggerConfig:
    name: LoggerName = MISSING
    project: str = "dni-repro"
    entity: Optional[str] = None
    mode: WandbMode = WandbMode.auto
    # How long to wait for the W&B server before falling back to offline logging.
    init_timeout_s: float = 60.0


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING


@dataclass
class TrainConfig:
    task: Task = MISSING
    experiment_name: str = MISSING  # W&B group and log folder name
    seed: Optional[int] = MISSING
    device: str = MISSING
    resume: Optional[str] = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    interface: InterfaceConfig = field(default_factory=InterfaceConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def _run_id() -> str:
    """Timestamp plus a random tag, fixed per process tree (a sweep shares one).

    Kept in the environment so launcher worker processes agree with their parent.
    """
    if RUN_ID_VARIABLE not in os.environ:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        os.environ[RUN_ID_VARIABLE] = f"{stamp}_{secrets.token_hex(3)}"
    return os.environ[RUN_ID_VARIABLE]


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _run_id)
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))


def compose_train_config(overrides: list[str]):
    """Compose conf/train.yaml as train.py does, without the Hydra runtime (tests, benchmarks)."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_schema(cfg: Any) -> None:
    """Re-check the composed config against the schema.

    Hydra lets `+key=value` force a key into a typed node, so a typo added that
    way survives composition; merging onto the schema catches it.
    """
    try:
        OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.to_container(cfg))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        reason = str(error).splitlines()[0]
        raise ConfigError(f"bad config key {key}: {reason}; `python train.py --cfg job` lists the valid keys") from None


def validate(cfg: Any) -> None:
    """Schema and value checks, run before any output is written. Raises ConfigError."""
    check_schema(cfg)
    # First, since the model's default widths come from the dataset.
    _require(
        cfg.task == cfg.dataset.task,
        f"task={cfg.task.value} but dataset={cfg.dataset.name} belongs to task={cfg.dataset.task.value}; "
        "the dataset picks the task, so leave `task` unset",
    )
    recurrent = cfg.task in RECURRENT_TASKS
    multi_network = cfg.task == Task.multi_network
    _require(
        (cfg.model.name == ModelName.two_rnn) == multi_network,
        f"dataset={cfg.dataset.name} is the multi-network task: use model=two_rnn (got model={cfg.model.name.value})"
        if multi_network
        else f"model=two_rnn needs dataset=digit_stream, got dataset={cfg.dataset.name}",
    )
    _require(
        multi_network or (cfg.model.name == ModelName.lstm) == recurrent,
        f"dataset={cfg.dataset.name} is a sequence task: use model=lstm (got model={cfg.model.name.value})"
        if recurrent
        else f"model=lstm needs a sequence dataset (copy, repeat_copy, ptb_char, text), got dataset={cfg.dataset.name}",
    )
    _require(cfg.model.depth >= 1, f"model.depth must be >= 1 (layers incl. the classifier), got {cfg.model.depth}")
    _require(cfg.model.width >= 1, f"model.width must be >= 1, got {cfg.model.width}")
    _require(cfg.optimizer.lr > 0, f"optimizer.lr must be > 0, got {cfg.optimizer.lr}")
    _require(
        all(0 < f < 1 for f in cfg.optimizer.lr_decay_at),
        f"optimizer.lr_decay_at holds fractions of max_steps in (0, 1), got {list(cfg.optimizer.lr_decay_at)}",
    )
    _require(cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"),
             f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    _require(cfg.seed is None or 0 <= cfg.seed < 2**32, f"seed must be in [0, 2**32) or null, got {cfg.seed}")
    # BatchNorm needs at least two examples per batch.
    _require(cfg.trainer.batch_size >= 2, f"trainer.batch_size must be >= 2, got {cfg.trainer.batch_size}")
    for key in ("max_steps", "batch_size", "eval_every", "log_every", "checkpoint_every", "eval_batch_size"):
        value = cfg.trainer[key]
        _require(value >= 1, f"trainer.{key} must be >= 1, got {value}")
    sg = cfg.interface.sg
    _require(sg.hidden_layers >= 0, f"interface.sg.hidden_layers must be >= 0, got {sg.hidden_layers}")
    _require(sg.hidden_width >= 1, f"interface.sg.hidden_width must be >= 1, got {sg.hidden_width}")
    _require(sg.kernel_size >= 1 and sg.kernel_size % 2 == 1, f"interface.sg.kernel_size must be odd to keep resolution, got {sg.kernel_size}")
    _require(cfg.interface.sg_loss_weight >= 0, f"interface.sg_loss_weight must be >= 0, got {cfg.interface.sg_loss_weight}")
    if recurrent:
        _validate_recurrent(cfg)
        return
    if multi_network:
        _validate_multi_network(cfg)
        return
    _require(
        cfg.interface.name not in (InterfaceName.bptt, InterfaceName.dni_aux),
        f"interface={cfg.interface.name.value} belongs to the recurrent tasks; pick a sequence dataset "
        f"(copy, repeat_copy, ptb_char, text) or {FEEDFORWARD_INTERFACE_CHOICES}",
    )
    _require(
        cfg.interface.name not in (InterfaceName.e2e, InterfaceName.decoupled_no_dni),
        f"interface={cfg.interface.name.value} belongs to the multi-network task; use dataset=digit_stream "
        f"or {FEEDFORWARD_INTERFACE_CHOICES}",
    )
    _require(
        len(cfg.dataset.input_shape) > 0 and cfg.dataset.num_classes is not None and cfg.dataset.num_classes >= 2,
        f"dataset {cfg.dataset.name} needs input_shape and num_classes >= 2 for a feed-forward task",
    )
    _require(
        cfg.interface.sg_scale == InterfaceConfig.sg_scale and not cfg.interface.sg_loss_into_core,
        "interface.sg_scale and interface.sg_loss_into_core apply to the recurrent tasks only; "
        "remove them or pick a sequence dataset",
    )
    _validate_decoupling(cfg)
    _require(
        cfg.model.activation == Activation.relu or cfg.model.name == ModelName.fcn,
        f"model.activation applies to model=fcn only; remove it for model={cfg.model.name.value}",
    )
    _require(
        cfg.interface.name not in FEEDBACK_ALIGNMENT_INTERFACES or cfg.model.name == ModelName.fcn,
        f"interface={cfg.interface.name.value} is written for fully connected layers; use model=fcn",
    )
    _require(
        cfg.model.name != ModelName.cnn or len(cfg.dataset.input_shape) == 3,
        f"model=cnn needs an image dataset, but {cfg.dataset.name} has input shape "
        f"{list(cfg.dataset.input_shape)}; use model=fcn",
    )


def _validate_recurrent(cfg: Any) -> None:
    """Copy, Repeat Copy and language modelling (section 3.2, issue #4)."""
    interface, trainer, dataset = cfg.interface, cfg.trainer, cfg.dataset
    _require(
        interface.name in RECURRENT_INTERFACES,
        f"interface={interface.name.value} is not a recurrent interface; use interface=bptt, dni or dni_aux",
    )
    _forbid_feedforward_options(cfg)
    _require(trainer.bptt_length >= 1, f"trainer.bptt_length must be >= 1, got {trainer.bptt_length}")
    _require(
        trainer.early_stopping_patience >= 0,
        f"trainer.early_stopping_patience must be >= 0 (0: off), got {trainer.early_stopping_patience}",
    )
    if cfg.task == Task.copy:
        copy = dataset.copy_task
        for key in ("alphabet", "max_repeats", "start_length", "start_repeats", "window_steps"):
            _require(copy[key] >= 1, f"dataset.copy_task.{key} must be >= 1, got {copy[key]}")
        _require(
            copy.start_repeats <= copy.max_repeats,
            f"dataset.copy_task.start_repeats={copy.start_repeats} exceeds dataset.copy_task.max_repeats={copy.max_repeats}",
        )
        _require(copy.threshold_bits > 0, f"dataset.copy_task.threshold_bits must be > 0, got {copy.threshold_bits}")
    else:
        split = list(dataset.split)
        _require(
            len(split) == 3 and all(f > 0 for f in split) and abs(sum(split) - 1) < 1e-6,
            f"dataset.split holds three positive train/valid/test fractions summing to 1, got {split}",
        )


def _forbid_feedforward_options(cfg: Any) -> None:
    interface = cfg.interface
    _require(
        interface.positions is None and interface.p_update == 1 and not interface.synthetic_inputs
        and cfg.trainer.sg_quality_every == 0,
        "interface.positions, p_update, synthetic_inputs and trainer.sg_quality_every are feed-forward options; "
        f"remove them for dataset={cfg.dataset.name}",
    )
    _require(interface.sg_scale >= 0, f"interface.sg_scale must be >= 0, got {interface.sg_scale}")


def _validate_multi_network(cfg: Any) -> None:
    """Networks A and B on the digit stream (section 3.3, issue #5)."""
    interface, trainer, stream = cfg.interface, cfg.trainer, cfg.dataset.digit_stream
    _require(
        interface.name in MULTI_NETWORK_INTERFACES,
        f"interface={interface.name.value} is not a multi-network regime; use interface=e2e, dni or decoupled_no_dni",
    )
    _forbid_feedforward_options(cfg)
    _require(
        not interface.sg_loss_into_core and not cfg.model.peepholes
        and trainer.bptt_length == TrainerConfig.bptt_length and trainer.early_stopping_patience == 0,
        "interface.sg_loss_into_core, model.peepholes, trainer.bptt_length and trainer.early_stopping_patience are "
        "options of the copy and language-model tasks; remove them (the multi-network T is dataset.digit_stream.period)",
    )
    _require(
        stream.digits in DIGIT_SOURCES,
        f"dataset.digit_stream.digits={stream.digits!r} is not a digit dataset; use one of {', '.join(DIGIT_SOURCES)}",
    )
    _require(not cfg.optimizer.lr_decay_at,
             "the multi-network task keeps its learning rate fixed (A.4); set optimizer.lr_decay_at=[]")
    _require(stream.period >= 1, f"dataset.digit_stream.period (T) must be >= 1, got {stream.period}")
    period = stream.period
    _require(
        stream.eval_length >= period and stream.eval_length % period == 0,
        f"dataset.digit_stream.eval_length must be a positive multiple of the period T={period}, "
        f"got {stream.eval_length}",
    )
    # Updates, logs and checkpoints happen where both networks have just updated: every T^2 steps.
    for key in ("max_steps", "eval_every", "log_every", "checkpoint_every"):
        value = trainer[key]
        _require(
            value % (period * period) == 0,
            f"trainer.{key}={value} must be a multiple of T^2={period * period} (dataset.digit_stream.period={period}) "
            "for the multi-network task, where one step is one time step",
        )


def _validate_decoupling(cfg: Any) -> None:
    """The feed-forward study options of section 3.1 and appendix A.2 (issue #3)."""
    interface, depth = cfg.interface, cfg.model.depth
    name = interface.name
    decoupled = name in (InterfaceName.dni, InterfaceName.cdni)
    if interface.positions is not None:
        positions = list(interface.positions)
        _require(
            len(positions) > 0 and all(1 <= k < depth for k in positions) and len(set(positions)) == len(positions),
            f"interface.positions lists distinct boundaries 1..{depth - 1} (after layer k) for model.depth={depth}, "
            f"got {positions}; use null for every boundary",
        )
    _require(0 < interface.p_update <= 1, f"interface.p_update must be in (0, 1], got {interface.p_update}")
    sparse = interface.p_update < 1 or interface.synthetic_inputs
    _require(
        not sparse or (decoupled and interface.positions is None),
        f"interface.p_update<1 and interface.synthetic_inputs need interface=dni or cdni on every boundary "
        f"(got interface={name.value}, positions={interface.positions}): a Bprop link would need the layers above it",
    )
    _require(
        not interface.synthetic_inputs or cfg.model.name == ModelName.fcn,
        "interface.synthetic_inputs (complete unlock) supports model=fcn only",
    )
    inputs = interface.input_model
    _require(inputs.hidden_layers >= 0, f"interface.input_model.hidden_layers must be >= 0, got {inputs.hidden_layers}")
    _require(inputs.hidden_width >= 1, f"interface.input_model.hidden_width must be >= 1, got {inputs.hidden_width}")
    _require(0 <= interface.stale_decay < 1, f"interface.stale_decay must be in [0, 1), got {interface.stale_decay}")
    quality_every = cfg.trainer.sg_quality_every
    _require(quality_every >= 0, f"trainer.sg_quality_every must be >= 0 (0 turns it off), got {quality_every}")
    _require(
        quality_every == 0 or (name in GRADIENT_EMITTING and not interface.synthetic_inputs),
        f"trainer.sg_quality_every compares emitted gradients with true ones: it needs interface=dni, cdni, "
        f"stale, dfa or kickback without synthetic inputs (got interface={name.value}, synthetic_inputs={interface.synthetic_inputs})",
    )


register_configs()
