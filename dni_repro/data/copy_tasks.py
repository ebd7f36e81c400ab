"""Copy and Repeat Copy (Graves et al. 2014, as section 3.2 and A.3 use them) as endless streams.

Symbols. Inputs: data symbols 0..K-1, then BLANK, STOP, and one count token per
R in 1..max_repeats. Outputs: data symbols 0..K-1, then STOP and BLANK.

    Copy (N):          in   s1..sN STOP          BLANK x (N+1)
                       out  BLANK x (N+1)         s1..sN STOP
    Repeat Copy (N,R): in   s1..sN STOP COUNT(R)  BLANK x (NR+1)
                       out  BLANK x (N+2)         (s1..sN) x R STOP

Only the writing steps carry loss (weight 1); the reading steps have weight 0.
An episode therefore lasts 2N+2 (Copy) or N(R+1)+3 (Repeat Copy) stream steps.
The paper measures a level by its episode length T_task = N+3 (Copy) and
NR+3 (Repeat Copy); `Level.task_length` is that number, and it is what the
curriculum reports and Table 2 compares.

Episodes follow one another in each of the B streams. All B streams share the
level and episode length, so one episode for the whole batch is a handful of
tensor operations; nothing loops over symbols.
"""
import math
from collections import deque
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Level:
    length: int  # N
    repeats: int = 1  # R (1 for Copy)
    repeat_task: bool = False

    @property
    def task_length(self) -> int:
        """The paper's T_task: N + 3 for Copy, N R + 3 for Repeat Copy."""
        return self.length * self.repeats + 3 if self.repeat_task else self.length + 3

    @property
    def episode_steps(self) -> int:
        reading = self.length + (2 if self.repeat_task else 1)
        return reading + self.length * self.repeats + 1


class CopyVocabulary:
    def __init__(self, alphabet: int, max_repeats: int):
        self.alphabet = alphabet
        self.max_repeats = max_repeats
        self.blank_in, self.stop_in = alphabet, alphabet + 1
        self.stop_out, self.blank_out = alphabet, alphabet + 1
        self.input_size = alphabet + 2 + max_repeats
        self.output_size = alphabet + 2

    def count_token(self, repeats: int) -> int:
        return self.alphabet + 1 + repeats


def make_episode(
    level: Level, vocab: CopyVocabulary, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One episode per stream: (B, steps) inputs, targets and loss weights, on the generator's device."""
    device = generator.device
    data = torch.randint(vocab.alphabet, (batch_size, level.length), generator=generator, device=device)

    def filled(value: int, steps: int) -> torch.Tensor:
        return torch.full((batch_size, steps), value, dtype=torch.long, device=device)

    header = [data, filled(vocab.stop_in, 1)]
    if level.repeat_task:
        header.append(filled(vocab.count_token(level.repeats), 1))
    reading = level.length + len(header) - 1
    writing = level.length * level.repeats + 1
    inputs = torch.cat(header + [filled(vocab.blank_in, writing)], dim=1)
    targets = torch.cat([filled(vocab.blank_out, reading), data.repeat(1, level.repeats), filled(vocab.stop_out, 1)], dim=1)
    weights = torch.cat([torch.zeros(batch_size, reading, device=device),
                         torch.ones(batch_size, writing, device=device)], dim=1)
    return inputs, targets, weights


class CopyTaskStream:
    """B endless streams of episodes, generated and served in (T, B) chunks on the
    training device, so a step copies nothing from the host.

    Every stream starts at its own random point of its first episode, so
    truncation boundaries fall at different places of the episode in different
    streams (with one shared phase, T dividing the episode length would keep
    every dependency inside or across a boundary). Episodes are generated when
    the buffer runs short, at the level current at that moment, so a level change
    takes effect from the next new episode.
    """

    def __init__(self, vocab: CopyVocabulary, level: Level, batch_size: int, seed: int, device: torch.device):
        self.vocab, self.level, self.batch_size, self.device = vocab, level, batch_size, device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.offsets = torch.randint(level.episode_steps, (batch_size, 1), generator=self.generator, device=device)
        self.max_offset = int(self.offsets.max())  # read once: on a GPU every read is a sync
        empty = torch.empty(batch_size, 0, device=device)
        self.inputs, self.targets, self.weights = empty.long(), empty.long(), empty

    def next_chunk(self, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        buffers = (self.inputs, self.targets, self.weights)
        while buffers[0].shape[1] < steps + self.max_offset:
            episode = make_episode(self.level, self.vocab, self.batch_size, self.generator)
            buffers = tuple(torch.cat([buffer, part], dim=1) for buffer, part in zip(buffers, episode))
        columns = self.offsets + torch.arange(steps, device=self.device)
        chunk = [buffer.gather(1, columns).t().contiguous() for buffer in buffers]
        self.inputs, self.targets, self.weights = (buffer[:, steps:] for buffer in buffers)
        return chunk[0], chunk[1], chunk[2]

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "level": self.level,
            "offsets": self.offsets,
            "buffers": (self.inputs, self.targets, self.weights),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.level = state["level"]
        self.offsets = state["offsets"].to(self.device)
        self.max_offset = int(self.offsets.max())
        self.inputs, self.targets, self.weights = (buffer.to(self.device) for buffer in state["buffers"])


class Curriculum:
    """Raise the level once the running average error falls below the threshold (A.3).

    The error is the cross-entropy in bits per writing step, averaged over the
    last `window_steps` training steps at the current level. Copy adds one to N;
    Repeat Copy alternately adds one to N and to R (N first), R capped at max_repeats.
    """

    def __init__(self, start: Level, threshold_bits: float, window_steps: int, max_repeats: int):
        self.level = start
        self.threshold_bits = threshold_bits
        self.max_repeats = max_repeats
        self.window: deque = deque(maxlen=window_steps)
        self.increments = 0
        self.solved_task_length = 0  # the largest T_task solved so far (0: none yet)

    def running_bits(self) -> float:
        loss = sum(entry[0] for entry in self.window)
        count = sum(entry[1] for entry in self.window)
        return loss / count / math.log(2) if count else float("nan")

    def record(self, loss_sum_nats: float, count: float) -> bool:
        """Add one training step's writing-step loss; True if that completed the level."""
        self.window.append((loss_sum_nats, count))
        if len(self.window) < self.window.maxlen or not self.running_bits() < self.threshold_bits:
            return False
        self.solved_task_length = max(self.solved_task_length, self.level.task_length)
        self.level = self._next_level()
        self.increments += 1
        self.window.clear()
        return True

    def _next_level(self) -> Level:
        level = self.level
        grow_repeats = level.repeat_task and self.increments % 2 == 1 and level.repeats < self.max_repeats
        if grow_repeats:
            return Level(level.length, level.repeats + 1, True)
        return Level(level.length + 1, level.repeats, level.repeat_task)

    def state_dict(self) -> dict:
        return {
            "level": self.level,
            "window": list(self.window),
            "increments": self.increments,
            "solved_task_length": self.solved_task_length,
        }

    def load_state_dict(self, state: dict) -> None:
        self.level = state["level"]
        self.window.clear()
        self.window.extend(state["window"])
        self.increments = state["increments"]
        self.solved_task_length = state["solved_task_length"]
