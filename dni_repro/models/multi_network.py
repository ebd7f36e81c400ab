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
from dataclasses import dataclass
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
class SGUpdate:
    """M's regression at one of B's updates: its loss, its targets' mean squared norm, and the cosine
    between all of M's predictions and their targets, as one vector (does M point the right way?)."""

    loss: torch.Tensor
    target_norm2: torch.Tensor
    cosine: torch.Tensor


class SenderA:
    """Network A's side of a decoupled system (`dni` or `decoupled_no_dni`): A updates after every
    window, from its own loss plus, with dni, sg_scale * M(m) as the gradient of its message m.
    M lives here with its sender; it regresses when B's true message gradients come back."""

    def __init__(self, system: TwoNetworkSystem, optimizer_a, optimizer_sg, batch_size: int, device: torch.device,
                 sg_scale: float, sg_loss_weight: float):
        self.system, self.optimizer_a, self.optimizer_sg = system, optimizer_a, optimizer_sg
        self.batch_size, self.sg_scale, self.sg_loss_weight = batch_size, sg_scale, sg_loss_weight
        self.uses_sg = system.regime == InterfaceName.dni
        self.state = system.network_a.core.initial_state(batch_size, device)
        self.sent: list[torch.Tensor] = []  # messages whose true gradients M has not yet seen, oldest first

    def train_window(self, images: torch.Tensor, odd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A's forward and update for one window; returns the detached message, A's loss and error count."""
        odd_logits, message, state = self.system.network_a(images, self.state)
        a_loss = F.cross_entropy(odd_logits, odd)
        objective = a_loss
        if self.uses_sg:
            # M(m) is only consumed here; M learns when B's true message gradients arrive.
            with torch.no_grad():
                synthetic = self.system.synthetic_gradient(message.detach())
            # d(objective)/dm gains sg_scale * M(m) / B: the per-example SG scaled, as a batch mean.
            objective = objective + self.sg_scale * (synthetic * message).sum() / self.batch_size
            self.sent.append(message.detach())
        self.optimizer_a.zero_grad(set_to_none=True)
        objective.backward()
        self.optimizer_a.step()
        self.state = _detached(state)
        return message.detach(), a_loss.detach(), _errors(odd_logits, odd)

    def regress(self, targets: torch.Tensor) -> SGUpdate:
        """Regress M, at its current weights, on the oldest messages and their per-example targets (W*B, U)."""
        count = len(targets) // self.batch_size
        messages = torch.cat(self.sent[:count])
        del self.sent[:count]
        predicted = self.system.synthetic_gradient(messages)
        # Mean over the windows and the batch of each example's squared error.
        sg_loss = (predicted - targets).pow(2).sum() / len(messages)
        self.optimizer_sg.zero_grad(set_to_none=True)
        (self.sg_loss_weight * sg_loss).backward()
        self.optimizer_sg.step()
        return SGUpdate(sg_loss.detach(), targets.pow(2).sum() / len(messages),
                        F.cosine_similarity(predicted.detach().flatten(), targets.flatten(), dim=0))


class ReceiverB:
    """Network B's side of a decoupled system: B ticks once per window on A's (detached) message and
    updates every T windows by truncated BPTT over them; with dni it then hands back the true
    gradient of its losses with respect to each message it read, per example (M's targets)."""

    def __init__(self, system: TwoNetworkSystem, optimizer_b, batch_size: int, device: torch.device):
        self.system, self.optimizer_b, self.batch_size = system, optimizer_b, batch_size
        self.wants_message_gradients = system.regime == InterfaceName.dni
        self.state = system.network_b.core.initial_state(batch_size, device)
        self.loss: Optional[torch.Tensor] = None  # B's summed loss since its last update, with its graph
        self.read: list[torch.Tensor] = []

    def train_window(self, message: torch.Tensor, threes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b_input = message.detach().requires_grad_(self.wants_message_gradients)
        if self.wants_message_gradients:
            self.read.append(b_input)
        b_logits, self.state = self.system.network_b(b_input, self.state)
        b_loss = F.cross_entropy(b_logits, threes)
        self.loss = b_loss if self.loss is None else self.loss + b_loss
        return b_loss.detach(), _errors(b_logits, threes)

    def update(self) -> Optional[torch.Tensor]:
        """B's update; returns M's targets for the messages read since the last one (dni), else None."""
        self.optimizer_b.zero_grad(set_to_none=True)
        self.loss.backward()
        self.optimizer_b.step()
        targets = (torch.cat([m.grad for m in self.read]) * self.batch_size) if self.wants_message_gradients else None
        self.state = _detached(self.state)
        self.loss, self.read = None, []
        return targets


class MultiNetworkTrainer:
    """Steps the system window by window in one process.

    `e2e` keeps one graph through both networks over each update period; the
    decoupled regimes wire a `SenderA` to a `ReceiverB` directly, as
    execution=distributed wires them across two processes. The state (the two
    networks' recurrent states) is complete at the end of every update period
    of T windows, which is where the loop checkpoints.
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
        self.optimizer_a, self.optimizer_b = optimizer_a, optimizer_b
        self.end_to_end = system.regime == InterfaceName.e2e
        self.sender = SenderA(system, optimizer_a, optimizer_sg, batch_size, device, sg_scale, sg_loss_weight)
        self.receiver = ReceiverB(system, optimizer_b, batch_size, device)
        self.window = 0  # windows since the start of the current update period
        self.joint_loss: Optional[torch.Tensor] = None  # e2e: both networks' summed losses, with the graph

    def train_window(self, images: torch.Tensor, odd: torch.Tensor, threes: torch.Tensor) -> WindowResult:
        if self.end_to_end:
            # One graph through A's message into B; A's loss waits for the update with B's.
            odd_logits, message, self.sender.state = self.system.network_a(images, self.sender.state)
            a_loss = F.cross_entropy(odd_logits, odd)
            b_logits, self.receiver.state = self.system.network_b(message, self.receiver.state)
            b_loss = F.cross_entropy(b_logits, threes)
            self.joint_loss = a_loss if self.joint_loss is None else self.joint_loss + a_loss
            self.joint_loss = self.joint_loss + b_loss
            a_loss, a_errors = a_loss.detach(), _errors(odd_logits, odd)
            b_loss, b_errors = b_loss.detach(), _errors(b_logits, threes)
        else:
            message, a_loss, a_errors = self.sender.train_window(images, odd)
            b_loss, b_errors = self.receiver.train_window(message, threes)
        self.window += 1
        result = WindowResult(a_loss, b_loss, a_errors, b_errors, a_updated=not self.end_to_end, b_updated=False)
        if self.window == self.period:
            self._end_update_period(result)
        return result

    def _end_update_period(self, result: WindowResult) -> None:
        """B's update (and in e2e A's), then in dni M's regression on the messages B read."""
        if self.end_to_end:
            self.optimizer_a.zero_grad(set_to_none=True)
            self.optimizer_b.zero_grad(set_to_none=True)
            self.joint_loss.backward()
            self.optimizer_a.step()
            self.optimizer_b.step()
            self.sender.state = _detached(self.sender.state)
            self.receiver.state = _detached(self.receiver.state)
            self.joint_loss = None
        else:
            targets = self.receiver.update()
            if targets is not None:
                update = self.sender.regress(targets)
                result.sg_loss, result.sg_target_norm2, result.sg_cosine = update.loss, update.target_norm2, update.cosine
        result.a_updated = True
        result.b_updated = True
        self.window = 0

    def state_dict(self) -> dict:
        if self.window != 0:
            raise RuntimeError("the multi-network trainer can only be saved at the end of an update period")
        return {"a_state": [t.cpu() for t in self.sender.state], "b_state": [t.cpu() for t in self.receiver.state]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.sender.state = tuple(t.to(device) for t in state["a_state"])
        self.receiver.state = tuple(t.to(device) for t in state["b_state"])


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
