"""Point-to-point messages between neighbouring workers, on torch.distributed.

Only detached tensors travel (the DNI messages are made of them). A send does not
block the sender: it is posted with `isend` and its handle kept, with the tensor,
until it is waited on, which happens once MAX_PENDING_SENDS newer ones are in
flight (by then it has been delivered) or at `flush`, which every loop calls
before it ends. A receive blocks until its tensor is there, or fails
after the process group's timeout. Both sides must post their messages in the
same order; the tags say which stream a message belongs to (NCCL ignores them
and relies on that order alone).
"""
import datetime
import time
from collections import deque
from enum import IntEnum

import torch
import torch.distributed as dist


# Sends in flight to one peer before the sender waits on the oldest: a step posts at most a few
# per micro-batch, and a peer that has fallen this far behind is the one to wait for anyway.
MAX_PENDING_SENDS = 16


class Tag(IntEnum):
    activation = 1  # forward, to the next worker
    labels = 2  # forward, with the activation
    gradient = 3  # backward, to the previous worker


class Peer:
    def __init__(self, rank: int, timeout_s: float):
        self.rank = rank
        self.timeout = datetime.timedelta(seconds=timeout_s)
        self._sends: deque[tuple[dist.Work, torch.Tensor]] = deque()
        # Seconds spent blocked waiting for this peer (receives) or on sends to it.
        self.receive_wait_s = 0.0
        self.send_wait_s = 0.0

    def send(self, tensor: torch.Tensor, tag: Tag) -> None:
        tensor = tensor.detach().contiguous()
        # Gloo marks a send complete only once it is waited on, so the oldest are waited on here:
        # a send older than MAX_PENDING_SENDS others has long been delivered, and the wait returns at once.
        while len(self._sends) >= MAX_PENDING_SENDS:
            self._wait_oldest_send()
        self._sends.append((dist.isend(tensor, self.rank, tag=int(tag)), tensor))

    def _wait_oldest_send(self) -> None:
        started = time.perf_counter()
        work, _ = self._sends.popleft()
        work.wait(self.timeout)
        self.send_wait_s += time.perf_counter() - started

    def receive(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, tag: Tag) -> torch.Tensor:
        tensor = torch.empty(shape, dtype=dtype, device=device)
        work = dist.irecv(tensor, self.rank, tag=int(tag))
        started = time.perf_counter()
        work.wait(self.timeout)
        self.receive_wait_s += time.perf_counter() - started
        return tensor

    def flush(self) -> None:
        while self._sends:
            self._wait_oldest_send()
