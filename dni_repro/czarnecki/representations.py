"""What a trained feed-forward network computes, layer by layer (Czarnecki et al. 2017, section 4).

- Representational dissimilarity matrices (RDMs): for a fixed probe set sorted by
  class, entry (a, b) of layer k's RDM is 1 - Pearson correlation of the layer's
  activations on examples a and b. Identical representations give 0, so a layer
  that groups digits by class shows dark class blocks on the diagonal.
- Weight norms: the Frobenius (L2) norm of each layer's weight matrix, the
  paper's proxy for how much of the computation a layer does.
"""
from pathlib import Path

import torch
from torch import nn

from dni_repro.runs.checkpoint import load_checkpoint
from dni_repro.config import schema_of
from dni_repro.experiments.feedforward_setup import build_network
from dni_repro.models.feedforward import DecoupledStack


def class_sorted_probe(labels: torch.Tensor, per_class: int, num_classes: int) -> torch.Tensor:
    """Indices of the first `per_class` examples of each class, class 0 first: a fixed, sorted probe set."""
    chosen = []
    for label in range(num_classes):
        members = torch.nonzero(labels == label).flatten()
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} examples, fewer than the {per_class} asked for")
        chosen.append(members[:per_class])
    return torch.cat(chosen)


def dissimilarity_matrix(representations: torch.Tensor) -> torch.Tensor:
    """(examples, features) -> (examples, examples) of 1 - Pearson correlation between examples.

    An example whose features are all equal has no defined correlation; it gets
    dissimilarity 0 to itself and to any other constant example, and 1 to the rest.
    """
    flat = representations.flatten(1).double()
    centred = flat - flat.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1, keepdim=True)
    constant = norms.squeeze(1) == 0
    unit = centred / torch.where(norms == 0, torch.ones_like(norms), norms)
    correlation = (unit @ unit.T).clamp(-1.0, 1.0)
    correlation[constant[:, None] & constant[None, :]] = 1.0
    correlation.fill_diagonal_(1.0)  # exactly: rounding must not make an example unlike itself
    return 1.0 - correlation


@torch.no_grad()
def layer_outputs(net: DecoupledStack, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output in evaluation mode (hidden layers, then the logits)."""
    was_training = net.training
    net.eval()
    outputs, x = [], inputs
    for layer in net.layers:
        x = layer(x)
        outputs.append(x)
    net.train(was_training)
    return outputs


def weight_norms(net: DecoupledStack) -> list[float]:
    """The L2 (Frobenius) norm of each layer's weight matrix, bottom layer first, classifier last."""
    norms = []
    for layer in net.layers:
        linear = next(module for module in layer.modules() if isinstance(module, (nn.Linear, nn.Conv2d)))
        norms.append(linear.weight.detach().norm().item())
    return norms


def load_trained_network(run_dir: Path, config: dict, input_shape: tuple[int, ...], num_classes: int) -> DecoupledStack:
    """Rebuild a feed-forward run's network from its config and load its last checkpoint, on the CPU."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(OmegaConf.structured(schema_of(config)), config)
    net = build_network(cfg.model, cfg.interface, input_shape, num_classes, cfg.trainer.batch_size)
    net.load_state_dict(load_checkpoint(run_dir)["model"])
    return net.eval()
