"""Tiny datasets written in the standard on-disk formats, for the real loaders."""
import gzip
import pickle
from pathlib import Path

import numpy as np

from dni_repro.data.mnist_family import IDX_FILES


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(folder: Path, train: int = 64, test: int = 32, compressed: bool = True, seed: int = 0):
    """The four MNIST IDX files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_FILES.items():
        if compressed:
            with gzip.open(folder / (stem + ".gz"), "wb") as handle:
                handle.write(idx_bytes(arrays[key]))
        else:
            (folder / stem).write_bytes(idx_bytes(arrays[key]))
    return arrays


def write_cifar10_batches(root: Path, per_batch: int = 20, seed: int = 0):
    """cifar-10-batches-py/ with five small training batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [int(x) for x in rng.integers(0, 10, per_batch)],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
        written[name] = batch
    return written


PTB_SENTENCES = {
    "train": ["the cat sat", "a dog ran far", "the end"],
    "valid": ["a cat ran"],
    "test": ["the dog sat"],
}


def write_ptb_char(folder: Path, repeats: int = 30) -> None:
    """ptb.char.{train,valid,test}.txt as in simple-examples: spaced characters, '_' between words."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, sentences in PTB_SENTENCES.items():
        lines = [" ".join(sentence.replace(" ", "_")) for sentence in sentences] * repeats
        (folder / f"ptb.char.{split}.txt").write_text("\n".join(f" {line} " for line in lines) + "\n")
