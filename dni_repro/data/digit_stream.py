"""The digit stream of the multi-network task (section 3.3, Fig. 8).

Each of B streams shows one digit image per time step, drawn uniformly with
replacement from a split. Time is cut into windows of T steps. At the end of
each window two labels are due:

* Network A's: how many of the window's T digits are odd (T + 1 classes);
* Network B's: how many 3s the last T^2 digits held (T^2 + 1 classes). At the
  start of a stream fewer than T^2 digits exist; the count covers those seen.
"""
import torch

NO_DIGIT = -1  # history slots before a stream's first digit


def odd_count_classes(period: int) -> int:
    return period + 1


def three_count_classes(period: int) -> int:
    return period * period + 1


class WindowCounter:
    """Labels window by window: keeps the last T^2 - T digit labels of every stream."""

    def __init__(self, period: int, batch_size: int, device: torch.device):
        self.period = period
        self.history = torch.full((period * period - period, batch_size), NO_DIGIT, dtype=torch.long, device=device)

    def labels(self, digits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, B) digit labels of the next window -> (B,) odd counts and (B,) counts of 3s over T^2 steps."""
        recent = torch.cat([self.history, digits])  # the last T^2 digits
        self.history = recent[self.period :]
        return (digits % 2 == 1).sum(dim=0), (recent == 3).sum(dim=0)


class DigitStream:
    """B endless streams of digits; `next_window()` returns T images per stream and the window's labels.

    Draws come from the stream's own generator on the split's device; that
    generator and the last T^2 - T labels are the whole state.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, period: int, seed: int):
        self.images, self.labels = images, labels
        self.batch_size, self.period = batch_size, period
        self.device = images.device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.counter = WindowCounter(period, batch_size, self.device)

    def next_window(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(T, B, C, H, W) images, (B,) odd counts and (B,) counts of 3s."""
        indices = torch.randint(
            len(self.labels), (self.period, self.batch_size), generator=self.generator, device=self.device
        )
        digits = self.labels[indices]
        odd, threes = self.counter.labels(digits)
        return self.images[indices], odd, threes

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "history": self.counter.history.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.counter.history = state["history"].to(self.device)
