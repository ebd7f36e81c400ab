"""How close emitted gradients are to the true ones (Fig. 10, appendix A.2).

On a measuring step the loop first computes, on the side, the true backprop
gradient dL/dh at every boundary of the fully connected network (same batch,
same parameters), then trains as usual while each gradient-emitting interface
records what it emitted and the target it got. Training is unaffected: the side
pass uses `autograd.grad` (no `.grad` is touched) and restores BatchNorm's
running statistics afterwards.
"""
import torch
import torch.nn.functional as F

from dni_repro.dni import DNI, DirectFeedbackAlignment, Kickback, StaleGradientInterface

EMITTING_TYPES = (DNI, StaleGradientInterface, DirectFeedbackAlignment, Kickback)


def agreement(estimate: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Per-example L2 distance and cosine similarity (batch means), and the sign error.

    The sign error is the fraction of dimensions whose signs differ (a zero
    counts as its own sign, so a zero estimate of a nonzero gradient is wrong).
    """
    estimate, reference = estimate.flatten(1).float(), reference.flatten(1).float()
    return {
        "l2": (estimate - reference).norm(dim=1).mean().item(),
        "cosine": F.cosine_similarity(estimate, reference, dim=1, eps=1e-12).mean().item(),
        "sign_error": (torch.sign(estimate) != torch.sign(reference)).float().mean().item(),
    }


def true_boundary_gradients(net, inputs: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """dL/dh_k for every boundary k of the connected network, in training mode."""
    saved_buffers = [buffer.clone() for buffer in net.layers.buffers()]
    try:
        outputs, x = [], inputs
        for layer in net.layers[:-1]:
            x = layer(x)
            outputs.append(x)
        loss = F.cross_entropy(net.layers[-1](x), labels)
        gradients = torch.autograd.grad(loss, outputs)
    finally:
        with torch.no_grad():
            for buffer, saved in zip(net.layers.buffers(), saved_buffers):
                buffer.copy_(saved)
    return [gradient.detach() for gradient in gradients]


def arm(net) -> None:
    """Make every gradient-emitting interface record its next exchange."""
    for interface in net.interfaces:
        if isinstance(interface, EMITTING_TYPES):
            interface.probe = {}


def collect(net, true_gradients: list[torch.Tensor]) -> dict[str, float]:
    """Metrics for the exchange recorded since `arm`, keyed sg_quality/boundary<k>/<reference>_<metric>."""
    metrics = {}
    for boundary, (interface, true_gradient) in enumerate(zip(net.interfaces, true_gradients), start=1):
        probe = interface.probe
        if probe is None:
            continue
        interface.probe = None
        if "synthetic" not in probe:  # the sender skipped this step (sparse updates)
            continue
        references = {"true": true_gradient}
        if "target" in probe:
            references["target"] = probe["target"]
        for reference_name, reference in references.items():
            for metric, value in agreement(probe["synthetic"], reference).items():
                metrics[f"sg_quality/boundary{boundary}/{reference_name}_{metric}"] = value
    return metrics
