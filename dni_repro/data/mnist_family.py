"""MNIST, Fashion-MNIST and the embedded 5k-digit MNIST subset.

Full datasets are read from the four standard IDX files (gzipped or raw) found in
`root`, or in `root/<MNIST|FashionMNIST>/raw` where torchvision puts them when it
downloads. Nothing here needs torchvision unless a download is required.
"""
import gzip
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dni_repro.data.tensors import Dataset, uint8_images_to_split
from dni_repro.errors import DataError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

SOURCES = {
    "mnist": ("MNIST", "http://yann.lecun.com/exdb/mnist/ (or torchvision.datasets.MNIST)"),
    "fashion_mnist": (
        "FashionMNIST",
        "https://github.com/zalandoresearch/fashion-mnist (or Debian's dataset-fashion-mnist package)",
    ),
}

MNIST_5K_ASSET = Path(__file__).with_name("assets") / "mnist_5k.npz"
MNIST_5K_TEST_PER_CLASS = 100


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST container format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise DataError(f"{path} is truncated: header says {shape}, file holds {len(data) - offset} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _find_idx_file(folders: list[Path], stem: str) -> Optional[Path]:
    for folder in folders:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def _locate_idx_files(root: Path, torchvision_folder: str) -> tuple[dict[str, Path], list[str]]:
    folders = [root, root / torchvision_folder / "raw"]
    found, missing = {}, []
    for key, stem in IDX_FILES.items():
        path = _find_idx_file(folders, stem)
        if path is None:
            missing.append(stem)
        else:
            found[key] = path
    return found, missing


def _download_with_torchvision(name: str, root: Path) -> None:
    import torchvision.datasets

    dataset_class = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST}[name]
    for train in (True, False):
        dataset_class(str(root), train=train, download=True)


def load_idx_dataset(name: str, root: Path, download: bool) -> Dataset:
    torchvision_folder, source = SOURCES[name]
    found, missing = _locate_idx_files(root, torchvision_folder)
    if missing and download:
        try:
            _download_with_torchvision(name, root)
        except Exception as error:  # no network, HTTP errors, ...: report below with the file list
            download_error = f" (download failed: {type(error).__name__})"
        else:
            download_error = ""
        found, missing = _locate_idx_files(root, torchvision_folder)
    else:
        download_error = "" if not missing else " (dataset.download=false)"
    if missing:
        raise DataError(
            f"{name}: missing {', '.join(m + '[.gz]' for m in missing)} in {root}{download_error}; "
            f"get them from {source} and set dataset.root=<folder holding them>"
        )
    arrays = {key: torch.from_numpy(read_idx(path).copy()) for key, path in found.items()}
    return Dataset(
        name=name,
        train=uint8_images_to_split(arrays["train_images"], arrays["train_labels"]),
        test=uint8_images_to_split(arrays["test_images"], arrays["test_labels"]),
        num_classes=10,
    )


def load_mnist_5k() -> Dataset:
    """The 5,000 real MNIST digits shipped with the package (500 per class).

    Fixed split, independent of the run's seed: within each class, in stored order,
    the last 100 digits are the test set and the first 400 the training set,
    giving 4,000 training and 1,000 test digits, both class-balanced.
    """
    with np.load(MNIST_5K_ASSET) as stored:
        images = torch.from_numpy(stored["images"])
        labels = torch.from_numpy(stored["labels"]).long()
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        test_mask[members[-MNIST_5K_TEST_PER_CLASS:]] = True
    return Dataset(
        name="mnist_5k",
        train=uint8_images_to_split(images[~test_mask], labels[~test_mask]),
        test=uint8_images_to_split(images[test_mask], labels[test_mask]),
        num_classes=10,
    )
