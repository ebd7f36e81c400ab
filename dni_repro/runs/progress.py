"""What a training run prints while it trains.

At a terminal: a tqdm bar with the step, rate, ETA and the latest loss and held-out metric.
Anywhere else (a log file, CI, SLURM): one plain line at every tenth of the run, because a
bar redrawn into a file is unreadable. The bar moves at logged steps, so it costs the loop
nothing between them.
"""
import os
import sys
import time
from typing import Optional, TextIO

# The metrics worth a glance, in the order they are shown, where a task logs them.
SHOWN = ("train/loss", "train/bpc", "train/bits", "train/a_loss", "train/b_loss",
         "val/error", "test/error", "test/a_error", "test/b_error", "valid/bpc", "curriculum/solved_task_length")
PLAIN_LINES = 10


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _format(metrics: dict) -> str:
    return " ".join(f"{key}={value:.4g}" for key, value in metrics.items())


class Progress:
    def __init__(self, total_steps: int, first_step: int, label: str, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stderr
        self.total, self.label = total_steps, label
        self.latest: dict = {}
        self.started, self.first_step = time.perf_counter(), first_step
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            # A terminal that reports no size (a bare pseudo-terminal) would hide the bar: tqdm draws none
            # in 0 rows. Asked of the stream itself, since COLUMNS in the environment may say otherwise.
            sized = _columns(self.stream) > 0
            self.bar = tqdm(total=total_steps, initial=first_step, desc=label, unit="step", file=self.stream,
                            dynamic_ncols=sized, **({} if sized else {"ncols": 120, "nrows": 24}))
        self.plain_every = max(1, total_steps // PLAIN_LINES)
        self.next_plain = (first_step // self.plain_every + 1) * self.plain_every

    def update(self, step: int, metrics: dict) -> None:
        self.latest.update({key: metrics[key] for key in SHOWN if key in metrics})
        if self.bar is not None:
            self.bar.set_postfix_str(_format(self.latest), refresh=False)
            self.bar.update(step - self.bar.n)
        elif step >= self.next_plain or step == self.total:
            self.next_plain = (step // self.plain_every + 1) * self.plain_every
            elapsed = time.perf_counter() - self.started
            rate = (step - self.first_step) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            print(f"{self.label} step {step}/{self.total} ({100 * step // self.total}%) {rate:.1f} step/s "
                  f"eta {eta:.0f}s {_format(self.latest)}".strip(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
