"""Two RNNs ticking at different rates, joined by a DNI on the message (section 3.3, Fig. 8, A.4).

Network A reads one digit per time step and, at the end of every window of T
steps, classifies its odd count and sends a message to Network B. B ticks once
per window on that message and classifies the count of 3s over T^2 steps. B's
truncated BPTT spans T ticks, so B updates once per T^2 steps in every regime.
What differs is how A learns:

* `e2e`: A and B form one graph over T^2 steps; A's odd-count losses and B's
  losses are backpropagated together and both networks update once per T^2
  steps. A is update-locked to B.
* `dni`: A updates at the end of every window, from its own loss plus
  sg_scale * M(m) injected as the gradient of its message m. B reads a
  detached copy of m; when B updates, the true gradient of B's losses with
  respect to each message it read is the regression target of M.
* `decoupled_no_dni`: A updates every window from its own loss only.

Every loss is summed over the windows of an update and averaged over the batch;
SG targets and predictions are per example (the batch gradient times B).
"""
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from dni_repro.names import MULTI_NETWORK_INTERFACES, InterfaceName
from dni_repro.dni.synthetic_gradient import ReLUSyntheticGradient
from dni_repro.models.bn_lstm import BatchNormLSTMCell

State = tuple[torch.Tensor, torch.Tensor]


class NetworkA(nn.Module):
    """[linear, BN, ReLU] x fcn_layers on the image, an LSTM, an odd-count classifier and a linear+BN message head."""

    def __init__(self, image_size: int, units: int, fcn_layers: int, classes: int, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = []
        width_in = image_size
        for _ in range(fcn_layers):
            layers += [nn.Linear(width_in, units), nn.BatchNorm1d(units), nn.ReLU()]
            width_in = units
        self.encoder = nn.Sequential(*layers)
        self.core = BatchNormLSTMCell(units, units, batch_norm)
        self.odd_classifier = nn.Linear(units, classes)
        self.message_head = nn.Sequential(nn.Linear(units, units), nn.BatchNorm1d(units))

    def forward(self, images: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """(T, B, C, H, W) images of one window -> odd-count logits, message, state after the window."""
        steps, batch = images.shape[:2]
        # The encoder has no recurrence: all T steps go through it as one batch.
        encoded = self.encoder(images.reshape(steps * batch, -1)).view(steps, batch, -1)
        for t in range(steps):
            state = self.core(encoded[t], state)
        h = state[0]
        return self.odd_classifier(h), self.message_head(h), state


class NetworkB(nn.Module):
    """An LSTM reading one message per tick, and a classifier of the count of 3s."""

    def __init__(self, message_size: int, units: int, classes: int, batch_norm: bool):
        super().__init__()
        self.core = BatchNormLSTMCell(message_size, units, batch_norm)
        self.count_classifier = nn.Linear(units, classes)

    def forward(self, message: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        state = self.core(message, state)
        return self.count_classifier(state[0]), state


class TwoNetworkSystem(nn.Module):
    def __init__(
        self,
        regime: InterfaceName,
        image_size: int,
        units: int,
        fcn_layers: int,
        period: int,
        batch_norm: bool = True,
        sg_hidden_layers: int = 1,
        sg_hidden_width: Optional[int] = None,
    ):
        super().__init__()
        if regime not in MULTI_NETWORK_INTERFACES:
            raise ValueError(f"multi-network regime must be one of {[i.value for i in MULTI_NETWORK_INTERFACES]}")
        self.regime = regime
        self.network_a = NetworkA(image_size, units, fcn_layers, period + 1, batch_norm)
        self.network_b = NetworkB(units, units, period * period + 1, batch_norm)
        self.synthetic_gradient = (
            ReLUSyntheticGradient(units, units, sg_hidden_layers, sg_hidden_width or units)
            if regime == InterfaceName.dni
            else None
        )

    def initial_states(self, batch_size: int, device: torch.device) -> tuple[State, State]:
        return (self.network_a.core.initial_state(batch_size, device),
                self.network_b.core.initial_state(batch_size, device))


def _detached(state: State) -> State:
    return state[0].detach(), state[1].detach()


def _errors(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) != labels).sum()


@dataclass
class WindowResult:
    """One window's losses (batch means, nats) and error counts, detached; which networks updated after it."""

    a_loss: torch.Tensor
    b_loss: torch.Tensor
    a_errors: torch.Tensor
    b_errors: torch.Tensor
    a_updated: bool
    b_updated: bool
    sg_loss: Optional[torch.Tensor] = None  # at B's updates, dni only
    sg_target_norm2: Optional[torch.Tensor] = None
    # Cosine between all of M's predictions and their targets, as one vector: does M point the right way?
    sg_cosine: Optional[torch.Tensor] = None


@dataclass
class _PendingUpdate:
    """What B's next update needs: its summed loss graph, and with dni the messages it read."""

    loss: Optional[torch.Tensor] = None
    messages: list[torch.Tensor] = field(default_factory=list)

    def add(self, loss: torch.Tensor) -> None:
        self.loss = loss if self.loss is None else self.loss + loss


class MultiNetworkTrainer:
    """Steps the system window by window; each regime's update rule lives in `train_window`.

    Its state (the two networks' recurrent states) is complete at the end of
    every update period of T windows, which is where the loop checkpoints.
    """

    def __init__(
        self,
        system: TwoNetworkSystem,
        optimizer_a: torch.optim.Optimizer,
        optimizer_b: torch.optim.Optimizer,
        optimizer_sg: Optional[torch.optim.Optimizer],
        period: int,
        batch_size: int,
        device: torch.device,
        sg_scale: float = 10.0,
        sg_loss_weight: float = 1.0,
    ):
        self.system, self.period, self.batch_size = system, period, batch_size
        self.optimizer_a, self.optimizer_b, self.optimizer_sg = optimizer_a, optimizer_b, optimizer_sg
        self.sg_scale, self.sg_loss_weight = sg_scale, sg_loss_weight
        self.a_state, self.b_state = system.initial_states(batch_size, device)
        self.window = 0  # windows since the start of the current update period
        self.pending = _PendingUpdate()

    def train_window(self, images: torch.Tensor, odd: torch.Tensor, threes: torch.Tensor) -> WindowResult:
        system, regime = self.system, self.system.regime
        end_to_end = regime == InterfaceName.e2e
        odd_logits, message, a_state = system.network_a(images, self.a_state)
        a_loss = F.cross_entropy(odd_logits, odd)

        if end_to_end:
            # One graph through A's message into B; A's loss waits for the update with B's.
            b_input = message
            self.pending.add(a_loss)
        else:
            objective = a_loss
            if regime == InterfaceName.dni:
                # M(m) is only consumed here; M learns at B's update from the true message gradient.
                with torch.no_grad():
                    synthetic = system.synthetic_gradient(message.detach())
                # d(objective)/dm gains sg_scale * M(m) / B: the per-example SG scaled, as a batch mean.
                objective = objective + self.sg_scale * (synthetic * message).sum() / self.batch_size
            self.optimizer_a.zero_grad(set_to_none=True)
            objective.backward()
            self.optimizer_a.step()
            a_state = _detached(a_state)
            # B reads a copy of the message; with dni it records B's gradient for M's target.
            b_input = message.detach()
            if regime == InterfaceName.dni:
                b_input.requires_grad_(True)
                self.pending.messages.append(b_input)

        b_logits, self.b_state = system.network_b(b_input, self.b_state)
        b_loss = F.cross_entropy(b_logits, threes)
        self.pending.add(b_loss)
        self.a_state = a_state
        self.window += 1
        result = WindowResult(a_loss.detach(), b_loss.detach(), _errors(odd_logits, odd), _errors(b_logits, threes),
                              a_updated=not end_to_end, b_updated=False)
        if self.window == self.period:
            self._end_update_period(result)
        return result

    def _end_update_period(self, result: WindowResult) -> None:
        """B's update (and in e2e A's), then in dni M's regression on the messages B read."""
        end_to_end = self.system.regime == InterfaceName.e2e
        if end_to_end:
            self.optimizer_a.zero_grad(set_to_none=True)
        self.optimizer_b.zero_grad(set_to_none=True)
        self.pending.loss.backward()
        if end_to_end:
            self.optimizer_a.step()
            self.a_state = _detached(self.a_state)
        self.optimizer_b.step()
        result.a_updated = result.a_updated or end_to_end
        result.b_updated = True

        if self.system.regime == InterfaceName.dni:
            messages = torch.cat([m.detach() for m in self.pending.messages])
            targets = torch.cat([m.grad for m in self.pending.messages]) * self.batch_size
            predicted = self.system.synthetic_gradient(messages)
            # Mean over the T windows and the batch of each example's squared error.
            sg_loss = (predicted - targets).pow(2).sum() / len(messages)
            self.optimizer_sg.zero_grad(set_to_none=True)
            (self.sg_loss_weight * sg_loss).backward()
            self.optimizer_sg.step()
            result.sg_loss = sg_loss.detach()
            result.sg_target_norm2 = targets.pow(2).sum() / len(messages)
            result.sg_cosine = F.cosine_similarity(predicted.detach().flatten(), targets.flatten(), dim=0)

        self.b_state = _detached(self.b_state)
        self.window = 0
        self.pending = _PendingUpdate()

    def state_dict(self) -> dict:
        if self.window != 0:
            raise RuntimeError("the multi-network trainer can only be saved at the end of an update period")
        return {"a_state": [t.cpu() for t in self.a_state], "b_state": [t.cpu() for t in self.b_state]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.a_state = tuple(t.to(device) for t in state["a_state"])
        self.b_state = tuple(t.to(device) for t in state["b_state"])


@torch.no_grad()
def evaluate_errors(system: TwoNetworkSystem, stream, windows: int, device: torch.device) -> tuple[float, float]:
    """A's and B's error rates over every output of `windows` windows of fresh test streams."""
    was_training = system.training
    system.eval()
    a_state, b_state = system.initial_states(stream.batch_size, device)
    a_errors = b_errors = 0
    for _ in range(windows):
        images, odd, threes = stream.next_window()
        odd_logits, message, a_state = system.network_a(images, a_state)
        b_logits, b_state = system.network_b(message, b_state)
        a_errors = a_errors + _errors(odd_logits, odd)  # kept on the device until the end
        b_errors = b_errors + _errors(b_logits, threes)
    system.train(was_training)
    outputs = windows * stream.batch_size
    return float(a_errors) / outputs, float(b_errors) / outputs
