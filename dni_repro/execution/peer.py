"""Point-to-point messages between neighbouring workers, on torch.distributed.

Only detached tensors travel (the DNI messages are made of them). A send never
blocks the sender: it is posted with `isend` and its handle kept, with the tensor,
until the send has completed; `flush` waits for all of them, and every loop
flushes before it ends. A receive blocks until its tensor is there, or fails
after the process group's timeout. Both sides must post their messages in the
same order; the tags say which stream a message belongs to (NCCL ignores them
and relies on that order alone).
"""
import datetime
import time
from enum import IntEnum

import torch
import torch.distributed as dist


class Tag(IntEnum):
    activation = 1  # forward, to the next worker
    labels = 2  # forward, with the activation
    gradient = 3  # backward, to the previous worker


class Peer:
    def __init__(self, rank: int, timeout_s: float):
        self.rank = rank
        self.timeout = datetime.timedelta(seconds=timeout_s)
        self._sends: list[tuple[dist.Work, torch.Tensor]] = []
        # Seconds spent blocked waiting for this peer (receives) or on sends to it.
        self.receive_wait_s = 0.0
        self.send_wait_s = 0.0

    def send(self, tensor: torch.Tensor, tag: Tag) -> None:
        tensor = tensor.detach().contiguous()
        self._sends = [(work, kept) for work, kept in self._sends if not work.is_completed()]
        self._sends.append((dist.isend(tensor, self.rank, tag=int(tag)), tensor))

    def receive(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, tag: Tag) -> torch.Tensor:
        tensor = torch.empty(shape, dtype=dtype, device=device)
        work = dist.irecv(tensor, self.rank, tag=int(tag))
        started = time.perf_counter()
        work.wait(self.timeout)
        self.receive_wait_s += time.perf_counter() - started
        return tensor

    def flush(self) -> None:
        started = time.perf_counter()
        for work, _ in self._sends:
            work.wait(self.timeout)
        self._sends = []
        self.send_wait_s += time.perf_counter() - started
