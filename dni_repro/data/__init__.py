"""Dataset loading by name: `load_dataset(cfg.dataset, data_dir)`."""
from pathlib import Path

from dni_repro.data.blobs import make_blobs
from dni_repro.data.cifar10 import load_cifar10
from dni_repro.data.mnist_family import load_idx_dataset, load_mnist_5k
from dni_repro.data.tensors import Dataset, EpochSampler, Split
from dni_repro.errors import ConfigError

KNOWN_DATASETS = ("mnist_5k", "mnist", "fashion_mnist", "cifar10", "blobs")


def load_dataset(dataset_cfg, data_dir: str) -> Dataset:
    """Load on the CPU; the caller moves it to the training device."""
    name = dataset_cfg.name
    root = Path(dataset_cfg.root) if dataset_cfg.root else Path(data_dir) / name
    if name == "mnist_5k":
        dataset = load_mnist_5k()
    elif name in ("mnist", "fashion_mnist"):
        dataset = load_idx_dataset(name, root, dataset_cfg.download)
    elif name == "cifar10":
        dataset = load_cifar10(root, dataset_cfg.download)
    elif name == "blobs":
        dataset = make_blobs(dataset_cfg.input_shape[0], dataset_cfg.num_classes)
    else:
        raise ConfigError(f"unknown dataset.name {name!r}; choose one of {', '.join(KNOWN_DATASETS)}")
    if list(dataset.input_shape) != list(dataset_cfg.input_shape):
        raise ConfigError(
            f"dataset.input_shape={list(dataset_cfg.input_shape)} but {name} has {list(dataset.input_shape)}"
        )
    return dataset


__all__ = ["Dataset", "EpochSampler", "Split", "load_dataset"]
