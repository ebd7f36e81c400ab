"""Every preset composes and trains; wrong input fails early, in one line, leaving no result."""
import json
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from dni_repro.config import CONFIG_DIR, validate
from dni_repro.errors import ConfigError
from tests.conftest import compose_config, run_in_process, train_cli
from tests.fake_datasets import write_cifar10_batches, write_idx_dataset, write_ptb_char

PRESETS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))
PROFILES = sorted(path.stem for path in (CONFIG_DIR / "profile").glob("*.yaml"))


@pytest.fixture(scope="module")
def fake_data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for name in ("mnist", "fashion_mnist"):
        write_idx_dataset(root / name)
    write_cifar10_batches(root / "cifar10")
    write_ptb_char(root / "ptb_char")
    return root


def test_presets_cover_table1_and_demo():
    assert len([p for p in PRESETS if p.startswith("table1_")]) == 16
    assert "demo" in PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_validates_and_trains_one_step(preset, tmp_path, fake_data_root):
    # Composing costs about half a second, so the preset as given is composed once, and its run
    # length is set on that config (the multi-network task steps in whole update periods of T^2 time steps).
    cfg = compose_config([f"experiment={preset}", f"paths.data_dir={fake_data_root}"])
    steps = cfg.dataset.digit_stream.period ** 2 if preset.startswith("fig8") else 1
    cfg.trainer.max_steps = steps
    validate(cfg)
    # The step itself runs at the smoke profile, on batches of 4: the CIFAR-10 CNN presets' steps
    # cost seconds on 32 images.
    overrides = [f"experiment={preset}", f"paths.data_dir={fake_data_root}", f"trainer.max_steps={steps}",
                 "trainer.batch_size=4"]
    summary = run_in_process(overrides, tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == steps
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_compose(profile):
    cfg = compose_config([f"profile={profile}"])
    validate(cfg)
    assert cfg.trainer.profile == profile


def test_paper_profile_is_appendix_a1():
    cfg = compose_config(["profile=paper"])
    assert cfg.optimizer.name.value == "adam" and cfg.optimizer.lr == 3e-5
    assert cfg.trainer.batch_size == 256 and cfg.trainer.max_steps == 500_000
    assert [round(f * cfg.trainer.max_steps) for f in cfg.optimizer.lr_decay_at] == [300_000, 400_000]
    assert cfg.optimizer.lr_decay_factor == 0.1 and cfg.interface.sg_loss_weight == 1.0


def test_table1_presets_follow_appendix_a1_sg_sizes():
    mnist_dni = compose_config(["experiment=table1_mnist_fcn_dni"])
    assert (mnist_dni.interface.sg.hidden_layers, mnist_dni.interface.sg.hidden_width) == (2, 1024)
    assert compose_config(["experiment=table1_mnist_fcn_cdni"]).interface.sg.hidden_layers == 0
    cifar = compose_config(["experiment=table1_cifar10_fcn_dni"])
    assert (cifar.model.width, cifar.interface.sg.hidden_layers, cifar.interface.sg.hidden_width) == (1000, 1, 4000)
    cnn = compose_config(["experiment=table1_cifar10_cnn_cdni"])
    assert (cnn.model.width, cnn.interface.sg.hidden_layers, cnn.interface.sg.hidden_width) == (128, 2, 128)


def test_group_typo_fails_with_hydra_listing_the_options():
    with pytest.raises(MissingConfigException) as error:
        compose_config(["interface=dnii"])
    assert "Available options in 'interface'" in str(error.value)
    for option in ("bprop", "no_bprop", "dni", "cdni"):
        assert option in str(error.value)


def test_wrong_type_and_unknown_value_fail_at_compose():
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(["model.depth=four"])
    assert "could not be converted to Integer" in str(error.value.__cause__)
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(["model.name=resnet"])
    assert "Invalid value 'resnet'" in str(error.value.__cause__)
    with pytest.raises(ConfigCompositionException):
        compose_config(["model.dpeth=3"])


def test_added_key_typo_is_rejected_before_running():
    with pytest.raises(ConfigError, match="model.dpeth"):
        validate(compose_config(["+model.dpeth=3"]))


def cli(args: list[str], tmp_path: Path):
    return train_cli(["profile=smoke", "logger=none", f"paths.log_dir={tmp_path}", *args])


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model.depth=0"], "model.depth must be >= 1"),
        (["optimizer.lr=0"], "optimizer.lr must be > 0"),
        (["optimizer.lr=-0.1"], "optimizer.lr must be > 0"),
        (["model=cnn", "dataset=blobs"], "model=cnn needs an image dataset"),
        (["dataset=mnist", "dataset.download=false", "dataset.root=/nonexistent"], "missing train-images-idx3-ubyte"),
        (["resume=/nonexistent/run"], "is not a run directory"),
        (["+trainer.max_step=3"], "bad config key trainer.max_step"),
        (["seed=-1"], "seed must be in [0, 2**32)"),
        (["trainer.batch_size=1"], "trainer.batch_size must be >= 2"),
        (["trainer.batch_size=4001"], "exceeds the 4000 training examples"),
        (["interface.sg.kernel_size=-1"], "interface.sg.kernel_size must be odd"),
        (["interface=dni", "interface.p_update=0"], "interface.p_update must be in (0, 1]"),
        (["model=cnn", "model.activation=tanh"], "model.activation applies to model=fcn only"),
    ],
    ids=["depth", "lr-zero", "lr-negative", "cnn-on-vectors", "missing-files", "resume-not-a-run", "added-typo",
         "seed", "batch-one", "batch-too-big", "kernel", "p-update", "activation-on-cnn"],
)
def test_bad_input_gives_one_line_error_and_no_result(args, expected, tmp_path):
    result = cli(args, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert expected in result.stderr
    assert not list(tmp_path.rglob("summary.json")) and not list(tmp_path.rglob("checkpoint.pt"))


@pytest.mark.parametrize("args", [["interface=unknown"], ["interface.name=unknown"]])
def test_unknown_interface_exits_non_zero_with_hydra_message(args, tmp_path):
    result = cli(args, tmp_path)
    assert result.returncode != 0
    assert "unknown" in result.stderr
    assert not list(tmp_path.rglob("summary.json"))


def test_paper_schedule_divides_lr_by_ten_at_300k_and_400k():
    from dni_repro.experiments.optim import StepDecaySchedule

    cfg = compose_config(["profile=paper"])
    lr = StepDecaySchedule(cfg.optimizer, cfg.trainer.max_steps).lr_at
    assert lr(0) == lr(299_999) == 3e-5
    assert lr(300_000) == pytest.approx(3e-6) and lr(399_999) == pytest.approx(3e-6)
    assert lr(400_000) == pytest.approx(3e-7) and lr(499_999) == pytest.approx(3e-7)


# Keys that belong to one task only; a run of another task must not carry them.
FEEDFORWARD_ONLY = {"interface.positions", "interface.p_update", "interface.synthetic_inputs", "interface.stale_decay",
                    "interface.sg.kernel_size", "trainer.sg_quality_every", "model.activation", "dataset.num_classes"}
SEQUENCE_ONLY = {"trainer.bptt_length", "model.peepholes", "interface.sg_loss_into_core", "dataset.copy_task",
                 "trainer.early_stopping_patience", "dataset.split", "dataset.path"}
MULTI_NETWORK_ONLY = {"dataset.digit_stream", "model.recurrent_batch_norm"}


def dotted_keys(node, prefix=""):
    keys = set()
    for key, value in node.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= dotted_keys(value, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize(
    "preset, own, foreign",
    [
        ("table1_mnist_fcn_dni", FEEDFORWARD_ONLY - {"dataset.split"}, SEQUENCE_ONLY | MULTI_NETWORK_ONLY),
        ("table2_copy", {"trainer.bptt_length", "model.peepholes", "dataset.copy_task"},
         FEEDFORWARD_ONLY | MULTI_NETWORK_ONLY | {"trainer.early_stopping_patience", "dataset.split", "dataset.path"}),
        ("table2_lm", {"trainer.bptt_length", "trainer.early_stopping_patience"},
         FEEDFORWARD_ONLY | MULTI_NETWORK_ONLY | {"dataset.copy_task", "dataset.split", "dataset.path"}),
        ("fig8", MULTI_NETWORK_ONLY, FEEDFORWARD_ONLY | SEQUENCE_ONLY),
    ],
)
def test_composed_config_holds_only_its_tasks_keys(preset, own, foreign):
    cfg = compose_config([f"experiment={preset}"])
    validate(cfg)
    keys = dotted_keys(OmegaConf.to_container(cfg, resolve=True))
    assert own <= keys
    assert not keys & foreign, sorted(keys & foreign)
    assert "???" not in json.dumps(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["interface.sg_scale=1.0"], "sg_scale"),
        (["trainer.bptt_length=3"], "bptt_length"),
        (["experiment=table2_copy", "interface.p_update=0.5"], "p_update"),
        (["experiment=table2_copy", "trainer.early_stopping_patience=2"], "early_stopping_patience"),
        (["experiment=fig8", "model.peepholes=true"], "peepholes"),
        (["experiment=fig8", "trainer.bptt_length=4"], "bptt_length"),
    ],
)
def test_another_tasks_option_fails_at_compose_naming_the_key(overrides, key):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(overrides)
    assert f"Key '{key}' not in" in str(error.value.__cause__)
