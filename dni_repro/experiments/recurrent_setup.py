"""What the Copy and language-model loops share: the network and optimizer built from the config,
and the window of recent chunks that the gradient-alignment diagnostic replays."""
from collections import deque

import torch

from dni_repro.experiments.optim import build_optimizer
from dni_repro.models.recurrent import RecurrentNetwork, StreamState


def build_recurrent_network(cfg, input_vocab: int, output_vocab: int) -> RecurrentNetwork:
    interface = cfg.interface
    return RecurrentNetwork(
        input_vocab,
        output_vocab,
        units=cfg.model.width,
        interface=interface.name,
        peepholes=cfg.model.peepholes,
        sg_hidden_layers=interface.sg.hidden_layers,
        sg_hidden_width=interface.sg.hidden_width,
        sg_scale=interface.sg_scale,
        sg_loss_into_core=interface.sg_loss_into_core,
        sg_loss_weight=interface.sg_loss_weight,
        sg_input=interface.sg_input,
        sg_target=interface.sg_target,
        sg_target_clip=interface.sg_target_clip,
    )


def build_recurrent_optimizer(cfg, net: RecurrentNetwork) -> torch.optim.Optimizer:
    """One optimizer; the SG model and the aux head in a group of their own at `optimizer.sg_lr` if set."""
    sg_lr = cfg.optimizer.sg_lr
    if sg_lr is None or not net.uses_sg:
        return build_optimizer(cfg.optimizer, net.parameters())
    sg_ids = {id(p) for p in net.sg_parameters()}
    rest = [p for p in net.parameters() if id(p) not in sg_ids]
    return build_optimizer(cfg.optimizer, [{"params": rest}, {"params": net.sg_parameters(), "lr": sg_lr}])


class AlignmentWindow:
    """The last `chunks` training chunks of every stream and the state they started from, so that
    `RecurrentNetwork.gradient_alignment` can compare gradients over them. Checkpointed with the
    run, so that a resumed run measures what an uninterrupted one does."""

    def __init__(self, chunks: int):
        self.chunks: deque = deque(maxlen=chunks)

    def push(self, symbols: torch.Tensor, targets: torch.Tensor, weights, state_before: StreamState) -> None:
        self.chunks.append((symbols, targets, weights, StreamState(state_before.h, state_before.c)))

    def measure(self, net: RecurrentNetwork) -> dict[str, float]:
        if len(self.chunks) < self.chunks.maxlen:
            return {}
        return net.gradient_alignment([chunk[:3] for chunk in self.chunks], self.chunks[0][3])

    def state_dict(self) -> list:
        return [(s, t, w, state.state_dict()) for s, t, w, state in self.chunks]

    def load_state_dict(self, saved: list, device: torch.device) -> None:
        self.chunks.clear()
        for symbols, targets, weights, state in saved:
            weights = weights.to(device) if weights is not None else None
            self.chunks.append((symbols.to(device), targets.to(device), weights, StreamState.from_state_dict(state, device)))
