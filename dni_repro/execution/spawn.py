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

from dni_repro.errors import RunDiverged, UserError, WorkerFailed
from dni_repro.execution.process_group import Place

# Exit statuses a worker uses, as train.py does: bad input, divergence, anything else.
USER_ERROR_STATUS, DIVERGED_STATUS, CRASH_STATUS = 2, 3, 1
STOPPED_STATUS = 128 + signal.SIGTERM  # stopped by SIGTERM after a checkpoint, as a single-process run exits
GRACE_S = 5.0
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
        traceback.print_exc(file=sys.stderr)
        print(f"error: worker rank {place.rank} failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(CRASH_STATUS)


def describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


def _first_failure(processes: list) -> tuple[int, int]:
    """The failed worker to blame: one killed by a signal before one that only lost its peer."""
    failed = [(rank, p.exitcode) for rank, p in enumerate(processes) if p.exitcode not in (None, 0)]
    killed = [entry for entry in failed if entry[1] < 0]
    return (killed or failed)[0]


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
            # Give the others a moment to end of themselves (they see the broken link), then stop them.
            _stop(processes, signal.SIGTERM, timeout=GRACE_S / 5)
            rank, exitcode = _first_failure(processes)
            if exitcode == STOPPED_STATUS:  # SIGTERM: rank 0 has checkpointed and said how to resume
                raise SystemExit(STOPPED_STATUS)
            if exitcode in (USER_ERROR_STATUS, DIVERGED_STATUS):
                raise WorkerFailed("", exitcode)  # the worker has printed its own line
            raise WorkerFailed(f"worker rank {rank} {describe_exit(exitcode)}; the job is stopped", 1)
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
