"""Start K workers on this machine and watch them until all end, or one fails.

Each worker is forked from a fork server that holds nothing but the imports, so
no state leaks from the parent.
The parent does no training: it waits on the workers' exit sentinels, and the
moment one ends with a non-zero status it stops the others (SIGTERM, then
SIGKILL after a grace period), reaps every process, and raises `WorkerFailed`
naming the rank. A SIGTERM to the parent is passed on to the workers, which
checkpoint and stop like a single-process run.
"""
import ctypes
import ctypes.util
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import traceback
from typing import Callable, Sequence

import torch
import torch.distributed

from dni_repro.errors import RunDiverged, UserError, WorkerFailed
from dni_repro.execution.process_group import Place

# Exit statuses a worker uses, as train.py does: bad input, divergence, anything else.
USER_ERROR_STATUS, DIVERGED_STATUS, CRASH_STATUS = 2, 3, 1
STOPPED_STATUS = 128 + signal.SIGTERM  # stopped by SIGTERM after a checkpoint, as a single-process run exits
PEER_LOST_STATUS = 4  # a peer's connection closed or a wait on it timed out
GRACE_S = 2.0  # for the survivors of a failed job to end of themselves before SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent (the fork server, which ends with train.py) dies,
    so that a killed job leaves no orphans training on."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's supervision still stops the workers
        pass


def _worker_main(place: Place, threads: int, target: Callable, args: Sequence) -> None:
    _die_with_parent()
    torch.set_num_threads(threads)
    try:
        target(place, *args)
    except UserError as error:
        print(f"error: worker rank {place.rank}: {error}", file=sys.stderr, flush=True)
        sys.exit(USER_ERROR_STATUS)
    except RunDiverged as error:
        print(f"{error}", file=sys.stderr, flush=True)
        sys.exit(DIVERGED_STATUS)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - one line for the user, the trace for whoever debugs
        if _lost_a_peer(error):  # a consequence: the parent names the worker that caused it
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"worker rank {place.rank} lost a peer: {first_line}", file=sys.stderr, flush=True)
            sys.exit(PEER_LOST_STATUS)
        traceback.print_exc(file=sys.stderr)
        print(f"error: worker rank {place.rank} failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(CRASH_STATUS)


def _lost_a_peer(error: BaseException) -> bool:
    """A closed connection or a timed-out wait in torch.distributed: what a worker sees when a peer dies or hangs."""
    if isinstance(error, torch.distributed.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(mark in text for mark in ("gloo", "NCCL", "Connection closed"))


def describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


def _failure_message(processes: list) -> tuple[str, int]:
    """The one line that names the worker to blame, and the job's exit status: a worker killed by a
    signal, else one that failed of itself, else (every failed worker only lost a peer) the peers
    that were still running: hung."""
    failed = [(rank, p.exitcode) for rank, p in enumerate(processes) if p.exitcode not in (None, 0)]
    causes = [entry for entry in failed if entry[1] < 0] or [entry for entry in failed if entry[1] != PEER_LOST_STATUS]
    if causes:
        rank, exitcode = causes[0]
        if exitcode in (USER_ERROR_STATUS, DIVERGED_STATUS, STOPPED_STATUS):
            return "", exitcode  # the worker has printed its own line (or, for SIGTERM, how to resume)
        return f"worker rank {rank} {describe_exit(exitcode)}; the job is stopped", CRASH_STATUS
    hung = [rank for rank, p in enumerate(processes) if p.exitcode is None]
    lost = ", ".join(str(rank) for rank, _ in failed)
    return (f"worker rank {lost} timed out waiting for worker rank {', '.join(map(str, hung)) or '?'}, which "
            "stopped responding; the job is stopped", CRASH_STATUS)


def run_workers(target: Callable, workers: int, args: Sequence = (), threads: int = 1) -> None:
    """Run `target(place, *args)` in `workers` processes (ranks 0..K-1) and wait for all of them."""
    # A fork server imports the target's module (torch with it) once per parent process, then forks
    # each worker from that clean, single-threaded state: a fresh worker without seconds of imports.
    context = multiprocessing.get_context("forkserver")
    # torch._dynamo too: torch imports it on a process's first optimizer step, which takes seconds.
    context.set_forkserver_preload([target.__module__, "torch._dynamo"])
    processes = [
        context.Process(target=_worker_main, args=(Place(rank, workers, rank), threads, target, args),
                        name=f"dni-worker-{rank}")
        for rank in range(workers)
    ]
    previous_handler = signal.getsignal(signal.SIGTERM)

    def forward_sigterm(signum, frame):
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward_sigterm)
    try:
        for process in processes:
            process.start()
        running = list(processes)
        while running:
            multiprocessing.connection.wait([p.sentinel for p in running])
            running = [p for p in running if p.exitcode is None]
            if any(p.exitcode not in (None, 0) for p in processes):
                break
        if any(p.exitcode not in (None, 0) for p in processes):
            # Which workers are still running says who hung, so look before stopping them.
            message, status = _failure_message(processes)
            if status == STOPPED_STATUS:  # SIGTERM: rank 0 has checkpointed and said how to resume
                raise SystemExit(STOPPED_STATUS)
            raise WorkerFailed(message, status)
    finally:
        _stop(processes, signal.SIGTERM, timeout=GRACE_S)
        _stop(processes, signal.SIGKILL, timeout=GRACE_S)
        signal.signal(signal.SIGTERM, previous_handler)


def _stop(processes: list, signum: int, timeout: float) -> None:
    """Send `signum` to every live worker and reap them all (no zombies)."""
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass
    for process in processes:
        if process.pid is not None:
            process.join(timeout)
