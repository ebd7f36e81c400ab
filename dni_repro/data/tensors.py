"""In-memory datasets: every split is one tensor on the training device.

Batches are drawn by indexing, so the training loop never touches PIL or a
DataLoader worker; for the paper's image sizes the whole set fits easily.
"""
from dataclasses import dataclass
from typing import Optional

import torch

from dni_repro.errors import ConfigError


@dataclass
class Split:
    inputs: torch.Tensor  # float32 in [0, 1], shape (N, *input_shape)
    labels: torch.Tensor  # int64, shape (N,)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: torch.device) -> "Split":
        return Split(self.inputs.to(device), self.labels.to(device))


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int
    # Held out of the training examples for model selection (`hold_out_validation`); None: all train.
    validation: Optional[Split] = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.inputs.shape[1:])

    def to(self, device: torch.device) -> "Dataset":
        validation = self.validation.to(device) if self.validation is not None else None
        return Dataset(self.name, self.train.to(device), self.test.to(device), self.num_classes, validation)


def hold_out_validation(dataset: Dataset, size: int, seed: int) -> Dataset:
    """Move `size` training examples, drawn by `seed` alone, into a validation split.

    The draw does not depend on the run's seed, so every trial of a search is scored on the same
    examples and never trains on them."""
    if size == 0:
        return dataset
    if not 0 < size < len(dataset.train):
        raise ConfigError(
            f"dataset.val_size={size} must be between 0 and the {len(dataset.train)} training examples of "
            f"{dataset.name} (0 trains on all of them)"
        )
    order = torch.randperm(len(dataset.train), generator=torch.Generator().manual_seed(seed))
    held, kept = order[:size].sort().values, order[size:].sort().values
    train = dataset.train
    return Dataset(dataset.name, Split(train.inputs[kept], train.labels[kept]), dataset.test, dataset.num_classes,
                   Split(train.inputs[held], train.labels[held]))


def uint8_images_to_split(images: torch.Tensor, labels: torch.Tensor) -> Split:
    """(N, H, W) or (N, C, H, W) uint8 images to a float split scaled to [0, 1] (appendix A.1)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return Split(images.float().div_(255.0), labels.long())


class EpochSampler:
    """Shuffles the training indices once per epoch from its own generator.

    Its whole state (generator, current permutation, position) goes into the
    checkpoint, so a resumed run draws exactly the batches the killed run would have.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int, device: torch.device):
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.permutation = torch.randperm(num_examples, generator=self.generator).to(device)
        self.position = 0

    def next_indices(self) -> torch.Tensor:
        # Batches never straddle epochs: the remainder of an epoch is dropped.
        if self.position + self.batch_size > self.num_examples:
            self.permutation = torch.randperm(self.num_examples, generator=self.generator).to(self.device)
            self.position = 0
        indices = self.permutation[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return indices

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "permutation": self.permutation.cpu(),
            "position": self.position,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.permutation = state["permutation"].to(self.device)
        self.position = state["position"]
