"""Truncated BPTT over an endless stream, with a DNI bridging each truncation boundary (section 2.2, Fig. 4).

One call of `RecurrentNetwork.train_chunk` processes the next T steps of every
stream in the batch and leaves the gradients in `.grad` for the optimizer:

* `bptt`: the gradient at the chunk's end is zero (ordinary truncated BPTT).
* `dni`: the chunk's end receives sg_scale * M(h_T), the synthetic gradient for
  the LSTM output and cell state, and the chunk's backward pass yields the true
  gradient at its start. That gradient is the regression target of M at the
  previous boundary (the bootstrapped target of Fig. 4). With `sg_target=consumed`
  the target holds the SG as consumed (sg_scale * M), so each chunk further ahead
  is discounted by sg_scale once more; with `sg_target=unscaled` it holds M itself
  (the sum of future gradients of eq. 3), and sg_scale applies only where the
  LSTM consumes the SG. M reads h, or h and c (`sg_input`). Given where the
  episodes of an episodic stream end (`episode_ends`), no gradient crosses an
  episode's end: the SG consumed after it, and the bootstrapped target at a
  boundary that is an episode's end, are zero.
* `dni_aux`: `dni` plus the future-SG auxiliary task of Fig. 3(b): an extra head
  reads the LSTM output at the previous boundary and predicts M(h_T), the
  synthetic gradient T steps ahead.

The SG regression and the auxiliary loss are evaluated at the previous chunk's
last core, which is recomputed from its saved input (the "T + 1 cores" of
Fig. 4) whenever a loss must reach the LSTM through it: always for the
auxiliary task, and for the SG regression when `loss_into_core` is set.
Everything else keeps the chunk's own gradient at the chunk: the start state is
detached, so nothing older than T + 1 steps is held in memory.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from dni_repro.names import RECURRENT_INTERFACES, InterfaceName, SGInput, SGTarget
from dni_repro.dni.synthetic_gradient import ReLUSyntheticGradient
from dni_repro.models.lstm import LSTMCore


# A bootstrapped SG target whose mean squared norm passes this has blown up: the bootstrap feeds on
# itself (seen with M reading (h, c) at sg_scale=1: 5e18 within 8k Copy steps). The loops call it divergence.
SG_TARGET_NORM2_LIMIT = 1e12


def divergence(loss_sum: float, metrics: dict) -> str:
    """Why a chunk's numbers mean the run has diverged, or "" if they do not."""
    if not math.isfinite(loss_sum):
        return "the training loss is not finite"
    target_norm2 = metrics.get("train/sg_target_norm2", 0.0)
    if not math.isfinite(target_norm2) or target_norm2 > SG_TARGET_NORM2_LIMIT:
        return f"the SG target's mean squared norm reached {target_norm2:.3g} (limit {SG_TARGET_NORM2_LIMIT:.0e})"
    return ""


@dataclass
class StreamState:
    """What one chunk hands to the next, all detached from any graph.

    (h, c) is the state after the last step; `last_symbols` and (h_before,
    c_before) are the input and start state of that last step, kept so the
    next chunk can recompute its core.
    """

    h: torch.Tensor
    c: torch.Tensor
    last_symbols: Optional[torch.Tensor] = None
    h_before: Optional[torch.Tensor] = None
    c_before: Optional[torch.Tensor] = None
    # (B,) whether an episode ended at that last step (only when the loop passes episode ends)
    at_episode_end: Optional[torch.Tensor] = None

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> "StreamState":
        return cls(**{k: (v.to(device) if v is not None else None) for k, v in state.items()})


@dataclass
class ChunkResult:
    loss_sum: torch.Tensor  # summed cross-entropy (nats) over the weighted steps
    loss_count: torch.Tensor  # how many steps that sum covers
    sg_loss: Optional[torch.Tensor] = None
    aux_loss: Optional[torch.Tensor] = None
    sg_target: Optional[torch.Tensor] = None  # (B, 2U) per-example gradient at the chunk's start
    sg_prediction: Optional[torch.Tensor] = None  # (B, 2U) what M predicted for that target
    cell: Optional[torch.Tensor] = None  # (B, U) cell state at the chunk's end
    # (B,) whether each stream's chunk has steps in the task loss (Copy: the output phase), where the loss is masked
    scored: Optional[torch.Tensor] = None

    def cell_metrics(self) -> dict[str, float]:
        """How large the cell state has grown: a saturated tanh(c) leaves little gradient to carry."""
        magnitude = self.cell.abs()
        return {"train/cell_abs_mean": magnitude.mean().item(), "train/cell_abs_max": magnitude.max().item()}

    def sg_metrics(self) -> dict[str, float]:
        """The regression losses, and how much of its target's squared norm the SG model explains
        (1 - loss / mean squared target: 0 is no better than predicting zero, 1 is exact), with M's
        prediction against its target in norm and direction."""
        metrics = {}
        if self.sg_loss is not None:
            target_norm2 = self.sg_target.pow(2).sum(dim=1).mean().item()
            metrics["train/sg_loss"] = self.sg_loss.item()
            metrics["train/sg_target_norm2"] = target_norm2
            if target_norm2 > 0:
                metrics["train/sg_explained"] = 1 - metrics["train/sg_loss"] / target_norm2
                target_norm = self.sg_target.norm(dim=1).mean()
                metrics["train/sg_norm_ratio"] = (self.sg_prediction.norm(dim=1).mean() / target_norm).item()
                metrics["train/sg_cosine"] = F.cosine_similarity(self.sg_prediction, self.sg_target, dim=1).mean().item()
                if self.scored is not None:
                    metrics.update(self._explained_by_phase())
        if self.aux_loss is not None:
            metrics["train/aux_loss"] = self.aux_loss.item()
        return metrics

    def _explained_by_phase(self) -> dict[str, float]:
        """The explained share apart for chunks with scored steps and chunks without (Copy: writing and
        reading), and the share of the target's squared norm that the scored chunks hold. A gradient
        that depends on what the state has failed to store cannot be predicted from the state."""
        error2 = (self.sg_prediction - self.sg_target).pow(2).sum(dim=1)
        target2 = self.sg_target.pow(2).sum(dim=1)
        metrics = {}
        for name, rows in (("scored", self.scored), ("unscored", ~self.scored)):
            if rows.any() and target2[rows].sum() > 0:
                metrics[f"train/sg_explained_{name}"] = (1 - error2[rows].sum() / target2[rows].sum()).item()
        metrics["train/sg_target_share_scored"] = (target2[self.scored].sum() / target2.sum()).item()
        return metrics


class RecurrentNetwork(nn.Module):
    """LSTM core, linear readout, and for dni/dni_aux the SG model (and aux head) on the LSTM output."""

    def __init__(
        self,
        input_vocab: int,
        output_vocab: int,
        units: int,
        interface: InterfaceName,
        peepholes: bool = True,
        sg_hidden_layers: int = 1,
        sg_hidden_width: Optional[int] = None,
        sg_scale: float = 0.1,
        sg_loss_into_core: bool = False,
        sg_loss_weight: float = 1.0,
        sg_input: SGInput = SGInput.h,
        sg_target: SGTarget = SGTarget.consumed,
        sg_target_clip: float = 0.0,
    ):
        super().__init__()
        if interface not in RECURRENT_INTERFACES:
            raise ValueError(f"recurrent interface must be one of {[i.value for i in RECURRENT_INTERFACES]}")
        self.interface = interface
        self.units = units
        self.core = LSTMCore(input_vocab, units, peepholes)
        self.readout = nn.Linear(units, output_vocab)
        self.uses_sg = interface != InterfaceName.bptt
        self.sg_scale = sg_scale
        self.sg_loss_into_core = sg_loss_into_core
        self.sg_loss_weight = sg_loss_weight  # on the SG regression and the aux loss alike (A.3: both 1)
        self.sg_input, self.sg_target = SGInput(sg_input), SGTarget(sg_target)
        # A per-example bound on the target's norm (0: none), against a bootstrap that feeds on itself.
        self.sg_target_clip = sg_target_clip
        reads = units if self.sg_input == SGInput.h else 2 * units
        self.synthetic_gradient = (
            ReLUSyntheticGradient(reads, 2 * units, sg_hidden_layers, sg_hidden_width or units) if self.uses_sg else None
        )
        self.future_sg_head = nn.Linear(reads, 2 * units) if interface == InterfaceName.dni_aux else None

    def sg_parameters(self) -> list[nn.Parameter]:
        """The SG model's and the aux head's parameters (they may get their own learning rate)."""
        modules = [m for m in (self.synthetic_gradient, self.future_sg_head) if m is not None]
        return [p for m in modules for p in m.parameters()]

    def sg_reads(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h if self.sg_input == SGInput.h else torch.cat([h, c], dim=1)

    def initial_state(self, batch_size: int, device: torch.device) -> StreamState:
        h, c = self.core.initial_state(batch_size, device)
        return StreamState(h, c)

    def train_chunk(
        self, symbols: torch.Tensor, targets: torch.Tensor, weights: Optional[torch.Tensor], state: StreamState,
        episode_ends: Optional[torch.Tensor] = None,
    ) -> tuple[ChunkResult, StreamState]:
        """Forward and backward over (T, B) symbols; `weights` (T, B) masks steps out of the task loss.

        `episode_ends` (T, B), if given, marks the steps at which a stream's episode ends. The state
        passes on from such a step, but no gradient flows back through it: the tasks' episodes are
        independent, so what follows an episode cannot tell its state anything.

        The task loss is summed over time and averaged over the batch, so
        per-example gradients, and hence the SG targets, do not depend on B.
        """
        steps, batch = symbols.shape
        h0 = state.h.detach().requires_grad_(self.uses_sg)
        c0 = state.c.detach().requires_grad_(self.uses_sg)
        projected = self.core.project_inputs(symbols)
        h, c = h0, c0
        outputs = []
        for t in range(steps):
            h_before, c_before = h, c
            h, c = self.core.step(projected[t], h, c)
            outputs.append(h)
            if episode_ends is not None:
                ended = episode_ends[t].unsqueeze(1)
                h, c = torch.where(ended, h.detach(), h), torch.where(ended, c.detach(), c)
        logits = self.readout(torch.stack(outputs))
        losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(steps, batch)
        if weights is not None:
            loss_sum, loss_count = (losses * weights).sum(), weights.sum()
        else:
            loss_sum, loss_count = losses.sum(), torch.tensor(float(losses.numel()), device=losses.device)
        objective = loss_sum

        unscaled_part = None
        if self.uses_sg:
            sg_input, aux_input = self._boundary_inputs(state)
            # M at the chunk's end is only consumed, so it needs no graph; M at its start is regressed below.
            with torch.no_grad():
                predicted_end = self.synthetic_gradient(self.sg_reads(h, c))
            predicted_start = self.synthetic_gradient(sg_input)
            injected = (predicted_end[:, : self.units] * h).sum() + (predicted_end[:, self.units :] * c).sum()
            if self.sg_target == SGTarget.unscaled and self.sg_scale != 1:
                # M's own contribution at the chunk's start, before the backward pass frees the graph.
                # (Zero where no path is left: every stream's episode ended inside the chunk.)
                unscaled_part = torch.cat(
                    torch.autograd.grad(injected, (h0, c0), retain_graph=True, materialize_grads=True), dim=1)
            objective = objective + self.sg_scale * injected

        (objective / batch).backward()
        result = ChunkResult(loss_sum.detach(), loss_count.detach(), cell=c.detach(),
                             scored=(weights > 0).any(dim=0) if weights is not None else None)

        if self.uses_sg:
            # Per-example gradient at the chunk's start: the bootstrapped target of M at that boundary.
            target = torch.cat([h0.grad, c0.grad], dim=1) * batch
            if unscaled_part is not None:  # from sg_scale x M at the end to M itself
                target = target + (1 - self.sg_scale) * unscaled_part
            if state.at_episode_end is not None:  # a new episode began here: nothing after depends on the old one
                target = target.masked_fill(state.at_episode_end.unsqueeze(1), 0.0)
            if self.sg_target_clip > 0:
                norms = target.norm(dim=1, keepdim=True)
                target = target * (self.sg_target_clip / norms.clamp(min=self.sg_target_clip))
            sg_loss = (predicted_start - target).pow(2).sum() / batch
            extra_loss = sg_loss
            result.sg_loss, result.sg_target, result.sg_prediction = sg_loss.detach(), target, predicted_start.detach()
            if self.future_sg_head is not None:
                aux_loss = (self.future_sg_head(aux_input) - predicted_end).pow(2).sum() / batch
                extra_loss = extra_loss + aux_loss
                result.aux_loss = aux_loss.detach()
            (self.sg_loss_weight * extra_loss).backward()

        next_state = StreamState(
            h.detach(), c.detach(), symbols[-1].clone(), h_before.detach(), c_before.detach(),
            episode_ends[-1].clone() if episode_ends is not None else None,
        )
        return result, next_state

    def _boundary_inputs(self, state: StreamState) -> tuple[torch.Tensor, torch.Tensor]:
        """The state at the previous boundary, as the SG model and the aux head read it (`sg_reads`).

        Recomputing the previous chunk's last core lets their losses reach the
        LSTM's weights: always for the aux head, for M only with `loss_into_core`.
        """
        carried = self.sg_reads(state.h.detach(), state.c.detach())
        needs_core = self.future_sg_head is not None or self.sg_loss_into_core
        if not needs_core or state.last_symbols is None:
            return carried, carried
        h, c = self.core.step(self.core.project_inputs(state.last_symbols), state.h_before, state.c_before)
        reads = self.sg_reads(h, c)
        return (reads if self.sg_loss_into_core else reads.detach()), reads

    def chunk_loss(self, symbols, targets, weights, h, c):
        """Summed task loss of one chunk from (h, c), with the graph kept, and the state at its end."""
        projected = self.core.project_inputs(symbols)
        outputs = []
        for t in range(symbols.shape[0]):
            h, c = self.core.step(projected[t], h, c)
            outputs.append(h)
        losses = F.cross_entropy(self.readout(torch.stack(outputs)).flatten(0, 1), targets.flatten(), reduction="none")
        losses = losses.view(targets.shape)
        return (losses * weights).sum() if weights is not None else losses.sum(), h, c

    def gradient_alignment(self, chunks: list[tuple], state: StreamState) -> dict[str, float]:
        """How well this scheme's gradient for a window of K chunks, started from `state`, points
        where BPTT through the whole window points: the cosine with the whole-window gradient of
        the truncated gradient (each chunk alone) and, with an SG model, of the gradient with the
        consumed SG at each boundary inside the window. Only the LSTM's and readout's parameters
        count, and nothing is left in `.grad`."""
        parameters = [*self.core.parameters(), *self.readout.parameters()]
        batch = chunks[0][0].shape[1]

        def flat(gradients) -> torch.Tensor:
            return torch.cat([g.reshape(-1) for g in gradients])

        h, c = state.h.detach(), state.c.detach()
        starts, total = [], 0.0
        for symbols, targets, weights in chunks:
            starts.append((h.detach(), c.detach()))
            loss, h, c = self.chunk_loss(symbols, targets, weights, h, c)
            total = total + loss
        whole = flat(torch.autograd.grad(total / batch, parameters))
        truncated = torch.zeros_like(whole)
        synthetic = torch.zeros_like(whole)
        for index, (symbols, targets, weights) in enumerate(chunks):
            loss, h, c = self.chunk_loss(symbols, targets, weights, *starts[index])
            inside = self.uses_sg and index < len(chunks) - 1  # the window's own end gets no gradient
            own = flat(torch.autograd.grad(loss / batch, parameters, retain_graph=inside))
            truncated += own
            if inside:
                with torch.no_grad():
                    predicted = self.synthetic_gradient(self.sg_reads(h, c))
                injected = (predicted[:, : self.units] * h).sum() + (predicted[:, self.units :] * c).sum()
                own = own + flat(torch.autograd.grad(self.sg_scale * injected / batch, parameters, materialize_grads=True))
            synthetic += own
        metrics = {"grad/cosine_truncated": F.cosine_similarity(truncated, whole, dim=0).item()}
        if self.uses_sg:
            metrics["grad/cosine_with_sg"] = F.cosine_similarity(synthetic, whole, dim=0).item()
        return metrics

    @torch.no_grad()
    def loss_sum(self, symbols: torch.Tensor, targets: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Summed cross-entropy (nats) of predicting `targets` from `symbols`, carrying the state."""
        outputs, h, c = self.core.unroll(symbols, state.h, state.c)
        logits = self.readout(outputs)
        total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        return total, StreamState(h, c)
