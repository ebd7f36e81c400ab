"""Gaussian blobs: a small non-image classification set, generated, never downloaded.

One isotropic Gaussian per class around a random centre. The generator seed is
fixed, so every run (whatever its `seed`) sees the same data.
"""
import torch

from dni_repro.data.tensors import Dataset, Split

GENERATOR_SEED = 1234
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
CENTRE_SCALE = 2.0


def make_blobs(num_features: int, num_classes: int) -> Dataset:
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    centres = CENTRE_SCALE * torch.randn(num_classes, num_features, generator=generator)

    def sample(per_class: int) -> Split:
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        inputs = centres[labels] + torch.randn(len(labels), num_features, generator=generator)
        return Split(inputs, labels)

    return Dataset("blobs", sample(TRAIN_PER_CLASS), sample(TEST_PER_CLASS), num_classes)
