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
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dni_repro.errors import ConfigError
from dni_repro.names import (
    MULTI_NETWORK_INTERFACES,
    RECURRENT_INTERFACES,
    RECURRENT_TASKS,
    Activation,
    InterfaceName,
    LoggerName,
    ModelName,
    OptimizerName,
    SGInput,
    SGTarget,
    Task,
    WandbMode,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"
RUN_ID_VARIABLE = "DNI_REPRO_RUN_ID"


# Image datasets a multi-network digit stream can draw from.
DIGIT_SOURCES = ("mnist_5k", "mnist", "fashion_mnist")

# Interfaces that emit a gradient of their own instead of passing the true one.
GRADIENT_EMITTING = (InterfaceName.dni, InterfaceName.cdni, InterfaceName.stale, InterfaceName.dfa, InterfaceName.kickback)

# The error-approximation methods of Czarnecki et al. (2017), section 5: fully connected models only.
FEEDBACK_ALIGNMENT_INTERFACES = (InterfaceName.fa, InterfaceName.dfa, InterfaceName.kickback)

FEEDFORWARD_INTERFACE_CHOICES = "interface=bprop|no_bprop|dni|cdni|stale|fa|dfa|kickback"


# Each task has its own schema: its dataset file pulls it in (`defaults: [/train_schema/<task>@_global_]`),
# so a run's composed config holds the keys its task uses and no other task's.


@dataclass
class ModelConfig:
    name: ModelName = MISSING
    # Layers including the final linear classifier, as the paper counts them:
    # depth 4 = three hidden layers + classifier, hence three interfaces.
    depth: int = MISSING
    # Units per FCN hidden layer, filters per CNN layer, or LSTM units.
    width: int = MISSING
    # Default hidden width of the SG models on this model's activations (A.1, A.3).
    sg_width: int = MISSING
    # Default hidden layers of interface=dni's SG models: two for the feed-forward nets (A.1), one for the LSTM (A.3).
    sg_hidden_layers: int = MISSING


@dataclass
class FeedforwardModelConfig(ModelConfig):
    # fcn only: the hidden layers' nonlinearity (Czarnecki et al. 2017 compare two on deep MNIST nets).
    activation: Activation = Activation.relu


@dataclass
class LSTMModelConfig(ModelConfig):
    # The diagonal peephole connections of Graves (2013).
    peepholes: bool = True
    # Default factor interface=dni applies to the synthetic gradient where it is consumed (A.3).
    sg_scale: float = 0.1


@dataclass
class TwoRNNModelConfig(ModelConfig):
    # The factor on the synthetic gradient of Network A's message (A.4).
    sg_scale: float = 10.0
    # Batch normalisation inside both LSTMs, after Cooijmans et al. (2016).
    recurrent_batch_norm: bool = True


@dataclass
class FeedforwardWidths:
    fcn: int = MISSING
    cnn: int = MISSING
    fcn_sg: int = MISSING
    cnn_sg: int = MISSING


@dataclass
class LSTMWidths:
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


@dataclass
class FeedforwardDatasetConfig(DatasetConfig):
    # (channels, height, width) for images, (features,) for vectors.
    input_shape: list[int] = MISSING
    num_classes: int = MISSING
    # Paper widths for this dataset (A.1): the model group reads them by default.
    model_widths: FeedforwardWidths = field(default_factory=FeedforwardWidths)
    # Training examples held out as a validation split, logged as val/error and used by searches.
    # 0 trains on all of them, the paper's protocol (it selected on test error).
    val_size: int = 0
    # Picks which examples are held out, independently of the run's seed.
    val_seed: int = 0


@dataclass
class CopyDatasetConfig(DatasetConfig):
    model_widths: LSTMWidths = field(default_factory=LSTMWidths)
    copy_task: CopyTaskConfig = field(default_factory=CopyTaskConfig)


@dataclass
class LanguageModelDatasetConfig(DatasetConfig):
    model_widths: LSTMWidths = field(default_factory=LSTMWidths)


@dataclass
class TextDatasetConfig(LanguageModelDatasetConfig):
    # dataset=text: the UTF-8 file to model, and its train/valid/test fractions (in file order).
    path: Optional[str] = None
    split: list[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])


@dataclass
class DigitStreamDatasetConfig(DatasetConfig):
    input_shape: list[int] = MISSING
    model_widths: LSTMWidths = field(default_factory=LSTMWidths)
    digit_stream: DigitStreamConfig = field(default_factory=DigitStreamConfig)


@dataclass
class SyntheticGradientConfig:
    hidden_layers: int = 2
    hidden_width: int = "${model.sg_width}"  # units (MLP) or channels (conv)


@dataclass
class ConvSyntheticGradientConfig(SyntheticGradientConfig):
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


@dataclass
class FeedforwardInterfaceConfig(InterfaceConfig):
    sg: ConvSyntheticGradientConfig = field(default_factory=ConvSyntheticGradientConfig)
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


@dataclass
class RecurrentInterfaceConfig(InterfaceConfig):
    # dni/dni_aux: the factor applied to the synthetic gradient where it is consumed (A.3).
    sg_scale: float = "${model.sg_scale}"
    # dni/dni_aux: let the SG regression loss reach the LSTM core (A.3 searched over this).
    sg_loss_into_core: bool = False
    # What M (and the aux head) read at a boundary: h, the LSTM output (A.3), or hc, output and cell state.
    sg_input: SGInput = SGInput.h
    # M's bootstrapped target: the chunk's gradient with the SG as consumed (sg_scale x M), or with M unscaled.
    sg_target: SGTarget = SGTarget.consumed
    # Bound on each example's target norm (0: none), against a bootstrap that feeds on itself.
    sg_target_clip: float = 0.0
    # Copy / Repeat Copy with dni/dni_aux: no gradient, true or synthetic, crosses an episode's end, so the
    # SG consumed after it and M's target at a boundary where an episode ends are zero.
    sg_episode_reset: bool = False


@dataclass
class MultiNetworkInterfaceConfig(InterfaceConfig):
    # dni: the factor on the synthetic gradient where Network A consumes it (A.4).
    sg_scale: float = "${model.sg_scale}"


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
class RecurrentOptimizerConfig(OptimizerConfig):
    # Learning rate of the SG model and the aux head; null: optimizer.lr.
    sg_lr: Optional[float] = None


@dataclass
class TrainerConfig:
    profile: str = MISSING
    max_steps: int = MISSING
    batch_size: int = MISSING
    eval_every: int = MISSING
    log_every: int = MISSING
    checkpoint_every: int = MISSING
    eval_batch_size: int = MISSING
    # A progress bar at a terminal, a plain line every tenth of the run otherwise; false: silent.
    progress: bool = True


@dataclass
class FeedforwardTrainerConfig(TrainerConfig):
    # Every this many steps, also measure the true backprop gradient at each
    # interface and log how far the synthetic gradient is from it (Fig. 10). 0: off.
    sg_quality_every: int = 0


@dataclass
class CopyTrainerConfig(TrainerConfig):
    # Truncated BPTT unroll length T (one training step = T time steps).
    bptt_length: int = 5
    # Every this many steps, replay the last grad_alignment_chunks chunks and log the cosine between
    # the truncated gradient (with and without the SG) and BPTT's through all of them. 0: off.
    grad_alignment_every: int = 500
    grad_alignment_chunks: int = 4


@dataclass
class LanguageModelTrainerConfig(CopyTrainerConfig):
    # Stop after this many validations without a new best (0: never stop early).
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
class ExecutionConfig:
    """execution=distributed: the stack's layer groups run as concurrent workers (torch.distributed)."""

    # Workers (ranks), one layer group each, cut at decoupled boundaries.
    workers: int = 2
    # Layers per worker, bottom first (they must sum to model.depth); null: balanced by parameter count.
    split: Optional[list[int]] = None
    # How many steps a DNI's regression target may lag behind its prediction; 0 is lock-step.
    max_staleness: int = 0
    # Micro-batches per step for pipelined Bprop (GPipe); 1 runs the stages one after another.
    micro_batches: int = 4
    # A worker blocked this long on a peer (or a collective) gives up, and the job ends.
    timeout_s: float = 60.0
    threads_per_worker: int = 1


@dataclass
class TrainConfig:
    """What every task's config holds."""

    task: Task = MISSING
    experiment_name: str = MISSING  # W&B group and log folder name
    seed: Optional[int] = MISSING
    device: str = MISSING
    resume: Optional[str] = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # null: one process (execution=local); execution=distributed fills it.
    execution: Optional[ExecutionConfig] = None


@dataclass
class FeedforwardTrainConfig(TrainConfig):
    model: FeedforwardModelConfig = field(default_factory=FeedforwardModelConfig)
    dataset: FeedforwardDatasetConfig = field(default_factory=FeedforwardDatasetConfig)
    interface: FeedforwardInterfaceConfig = field(default_factory=FeedforwardInterfaceConfig)
    trainer: FeedforwardTrainerConfig = field(default_factory=FeedforwardTrainerConfig)


@dataclass
class CopyTrainConfig(TrainConfig):
    optimizer: RecurrentOptimizerConfig = field(default_factory=RecurrentOptimizerConfig)
    model: LSTMModelConfig = field(default_factory=LSTMModelConfig)
    dataset: CopyDatasetConfig = field(default_factory=CopyDatasetConfig)
    interface: RecurrentInterfaceConfig = field(default_factory=RecurrentInterfaceConfig)
    trainer: CopyTrainerConfig = field(default_factory=CopyTrainerConfig)


@dataclass
class LanguageModelTrainConfig(TrainConfig):
    optimizer: RecurrentOptimizerConfig = field(default_factory=RecurrentOptimizerConfig)
    model: LSTMModelConfig = field(default_factory=LSTMModelConfig)
    dataset: LanguageModelDatasetConfig = field(default_factory=LanguageModelDatasetConfig)
    interface: RecurrentInterfaceConfig = field(default_factory=RecurrentInterfaceConfig)
    trainer: LanguageModelTrainerConfig = field(default_factory=LanguageModelTrainerConfig)


@dataclass
class TextLanguageModelTrainConfig(LanguageModelTrainConfig):
    dataset: TextDatasetConfig = field(default_factory=TextDatasetConfig)


@dataclass
class MultiNetworkTrainConfig(TrainConfig):
    model: TwoRNNModelConfig = field(default_factory=TwoRNNModelConfig)
    dataset: DigitStreamDatasetConfig = field(default_factory=DigitStreamDatasetConfig)
    interface: MultiNetworkInterfaceConfig = field(default_factory=MultiNetworkInterfaceConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


# ConfigStore name (`train_schema/<name>`) -> schema. A dataset file names one in its defaults list.
SCHEMAS = {
    "feedforward": FeedforwardTrainConfig,
    "copy": CopyTrainConfig,
    "language_model": LanguageModelTrainConfig,
    "language_model_text": TextLanguageModelTrainConfig,
    "multi_network": MultiNetworkTrainConfig,
}


def schema_of(cfg: Any) -> type:
    """The schema a composed (or saved) config belongs to: its dataset's, as the dataset file names it."""
    dataset = cfg["dataset"] if isinstance(cfg, dict) else cfg.dataset
    task, name = Task(dataset["task"]), dataset["name"]
    if task == Task.language_model and name == "text":
        return TextLanguageModelTrainConfig
    return SCHEMAS[task.value]


def _run_id() -> str:
    """Timestamp plus a random tag, fixed per process tree (a sweep shares one).

    Kept in the environment so launcher worker processes agree with their parent. Under torchrun
    it is torchrun's rendezvous id (a fresh uuid with --standalone), which every rank shares.
    """
    rendezvous_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if RUN_ID_VARIABLE not in os.environ and rendezvous_id != "none":
        os.environ[RUN_ID_VARIABLE] = f"torchrun_{rendezvous_id}"
    if RUN_ID_VARIABLE not in os.environ:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        os.environ[RUN_ID_VARIABLE] = f"{stamp}_{secrets.token_hex(3)}"
    return os.environ[RUN_ID_VARIABLE]


def _ensure_dir(path: str) -> str:
    """The folder, created if absent: sqlite makes its file but not the folders above it."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def register_configs() -> None:
    """Idempotent: storing a schema converts its dataclasses again (a tenth of a second), and tests compose often."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        if f"{name}.yaml" not in store.repo.get("train_schema", {}):
            store.store(group="train_schema", name=name, node=schema)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _run_id)
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))
    if not OmegaConf.has_resolver("ensure_dir"):
        OmegaConf.register_new_resolver("ensure_dir", _ensure_dir)


def compose_train_config(overrides: list[str], return_hydra_config: bool = False):
    """Compose conf/train.yaml as train.py does, without the Hydra runtime (tests, benchmarks, sweep checks);
    with `return_hydra_config`, the `hydra` node (sweeper, launcher) is kept."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=return_hydra_config)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_schema(cfg: Any) -> None:
    """Re-check the composed config against the schema.

    Hydra lets `+key=value` force a key into a typed node, so a typo added that
    way survives composition; merging onto the schema catches it.
    """
    try:
        OmegaConf.merge(OmegaConf.structured(schema_of(cfg)), OmegaConf.to_container(cfg))
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
    _require(cfg.interface.sg_loss_weight >= 0, f"interface.sg_loss_weight must be >= 0, got {cfg.interface.sg_loss_weight}")
    if cfg.execution is not None:
        _validate_execution(cfg)
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
    sg = cfg.interface.sg
    _require(sg.kernel_size >= 1 and sg.kernel_size % 2 == 1, f"interface.sg.kernel_size must be odd to keep resolution, got {sg.kernel_size}")
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


def _validate_execution(cfg: Any) -> None:
    """execution=distributed (issue #16): what can be split into workers, checked before any process starts."""
    execution, interface = cfg.execution, cfg.interface
    _require(cfg.task in (Task.feedforward, Task.multi_network),
             f"execution=distributed runs the feed-forward stacks and the multi-network task (fig8); "
             f"dataset={cfg.dataset.name} is task={cfg.task.value}: use execution=local")
    _require(execution.workers >= 1, f"execution.workers must be >= 1, got {execution.workers}")
    _require(execution.max_staleness >= 0, f"execution.max_staleness must be >= 0 (0: lock-step), got {execution.max_staleness}")
    _require(execution.micro_batches >= 1, f"execution.micro_batches must be >= 1, got {execution.micro_batches}")
    _require(execution.timeout_s > 0, f"execution.timeout_s must be > 0, got {execution.timeout_s}")
    _require(execution.threads_per_worker >= 1, f"execution.threads_per_worker must be >= 1, got {execution.threads_per_worker}")
    if cfg.task == Task.multi_network:
        _require(execution.workers == 2, f"the multi-network task runs Network A and Network B: execution.workers must be 2, "
                                         f"got {execution.workers}")
        _require(interface.name != InterfaceName.e2e,
                 "interface=e2e backpropagates through both networks in one graph, so it cannot be split; "
                 "use interface=dni or decoupled_no_dni with execution=distributed")
        return
    _require(interface.name in (InterfaceName.bprop, InterfaceName.dni, InterfaceName.cdni, InterfaceName.no_bprop),
             f"execution=distributed splits the stack at DNI boundaries (interface=dni or cdni) or cuts "
             f"(no_bprop), or runs interface=bprop as pipelined backprop; interface={interface.name.value} cannot be split")
    _require(interface.p_update == 1 and not interface.synthetic_inputs,
             "execution=distributed runs every layer every step: use interface.p_update=1 and interface.synthetic_inputs=false")
    _require(cfg.trainer.sg_quality_every == 0,
             "trainer.sg_quality_every needs the whole network's true gradient in one process: set it to 0 with execution=distributed")
    _require(execution.micro_batches <= cfg.trainer.batch_size,
             f"execution.micro_batches={execution.micro_batches} exceeds trainer.batch_size={cfg.trainer.batch_size}")
    _require(execution.split is None or len(execution.split) == execution.workers,
             f"execution.split={list(execution.split or [])} must list one layer count per worker "
             f"(execution.workers={execution.workers})")


def _validate_recurrent(cfg: Any) -> None:
    """Copy, Repeat Copy and language modelling (section 3.2, issue #4)."""
    interface, trainer, dataset = cfg.interface, cfg.trainer, cfg.dataset
    _require(
        interface.name in RECURRENT_INTERFACES,
        f"interface={interface.name.value} is not a recurrent interface; use interface=bptt, dni or dni_aux",
    )
    _require(interface.sg_scale >= 0, f"interface.sg_scale must be >= 0, got {interface.sg_scale}")
    _require(interface.sg_target_clip >= 0, f"interface.sg_target_clip must be >= 0 (0: off), got {interface.sg_target_clip}")
    _require(not interface.sg_episode_reset or (cfg.task == Task.copy and interface.name != InterfaceName.bptt),
             "interface.sg_episode_reset needs episodes and a synthetic gradient: use it with dataset=copy or repeat_copy "
             "and interface=dni or dni_aux")
    sg_lr = cfg.optimizer.sg_lr
    _require(sg_lr is None or sg_lr > 0, f"optimizer.sg_lr must be > 0 or null (null: optimizer.lr), got {sg_lr}")
    _require(trainer.bptt_length >= 1, f"trainer.bptt_length must be >= 1, got {trainer.bptt_length}")
    _require(trainer.grad_alignment_every >= 0,
             f"trainer.grad_alignment_every must be >= 0 (0: off), got {trainer.grad_alignment_every}")
    _require(trainer.grad_alignment_chunks >= 2,
             f"trainer.grad_alignment_chunks must be >= 2 (the window BPTT spans), got {trainer.grad_alignment_chunks}")
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
        _require(
            trainer.early_stopping_patience >= 0,
            f"trainer.early_stopping_patience must be >= 0 (0: off), got {trainer.early_stopping_patience}",
        )
    if dataset.name == "text":
        split = list(dataset.split)
        _require(
            len(split) == 3 and all(f > 0 for f in split) and abs(sum(split) - 1) < 1e-6,
            f"dataset.split holds three positive train/valid/test fractions summing to 1, got {split}",
        )


def _validate_multi_network(cfg: Any) -> None:
    """Networks A and B on the digit stream (section 3.3, issue #5)."""
    interface, trainer, stream = cfg.interface, cfg.trainer, cfg.dataset.digit_stream
    _require(
        interface.name in MULTI_NETWORK_INTERFACES,
        f"interface={interface.name.value} is not a multi-network regime; use interface=e2e, dni or decoupled_no_dni",
    )
    _require(interface.sg_scale >= 0, f"interface.sg_scale must be >= 0, got {interface.sg_scale}")
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
