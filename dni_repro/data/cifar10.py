"""CIFAR-10 from the standard pickled batches (the "python version" archive)."""
import pickle
from pathlib import Path

import numpy as np
import torch

from dni_repro.data.tensors import Dataset, uint8_images_to_split
from dni_repro.errors import DataError

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (or torchvision.datasets.CIFAR10)"


def _batch_folder(root: Path) -> Path:
    """Accept either the extracted `cifar-10-batches-py` folder or its parent."""
    return root / BATCH_FOLDER if (root / BATCH_FOLDER).is_dir() else root


def _missing(root: Path) -> list[str]:
    folder = _batch_folder(root)
    return [name for name in TRAIN_BATCHES + TEST_BATCHES if not (folder / name).is_file()]


def _read_batches(folder: Path, names: list[str]):
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return uint8_images_to_split(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))


def load_cifar10(root: Path, download: bool) -> Dataset:
    reason = ""
    if _missing(root) and download:
        try:
            import torchvision.datasets

            torchvision.datasets.CIFAR10(str(root), train=True, download=True)
        except Exception as error:  # offline or HTTP failure: report with the file list below
            reason = f" (download failed: {type(error).__name__})"
    elif _missing(root):
        reason = " (dataset.download=false)"
    missing = _missing(root)
    if missing:
        raise DataError(
            f"cifar10: missing {', '.join(missing)} in {root}/{BATCH_FOLDER}{reason}; "
            f"get them from {SOURCE} and set dataset.root=<folder holding them>"
        )
    folder = _batch_folder(root)
    return Dataset("cifar10", _read_batches(folder, TRAIN_BATCHES), _read_batches(folder, TEST_BATCHES), 10)
