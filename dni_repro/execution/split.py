"""Cutting a chain of layers into K contiguous groups, one per worker."""
from itertools import combinations
from typing import Optional, Sequence

from dni_repro.errors import ConfigError


def check_split(sizes: Sequence[int], layers: int, cuttable: Sequence[int]) -> list[tuple[int, int]]:
    """Validate a user's `split=` (layers per worker) and return each worker's [first, last) range."""
    if any(size < 1 for size in sizes) or sum(sizes) != layers:
        raise ConfigError(
            f"execution.split={list(sizes)} must give each worker at least one layer and cover all {layers} "
            f"layers (sum {sum(sizes)}); e.g. execution.split=[{layers - layers // 2},{layers // 2}]"
        )
    ranges, first = [], 0
    for size in sizes:
        ranges.append((first, first + size))
        first += size
    bad = [last for _, last in ranges[:-1] if last not in cuttable]
    if bad:
        raise ConfigError(
            f"execution.split={list(sizes)} cuts after layer(s) {bad}, which have no decoupled interface; "
            f"cut only after layers {sorted(cuttable)}"
        )
    return ranges


def balanced_split(costs: Sequence[float], workers: int, cuttable: Sequence[int]) -> list[tuple[int, int]]:
    """The [first, last) ranges that minimise the largest group's cost, cutting only at `cuttable`
    boundaries (a cut at b puts layers < b on one side). Exhaustive over the cut positions: stacks are short."""
    positions = sorted(b for b in cuttable if 0 < b < len(costs))
    if workers - 1 > len(positions):
        raise ConfigError(
            f"execution.workers={workers} needs {workers - 1} decoupled boundaries to cut at, but this network "
            f"has {len(positions)}; use at most execution.workers={len(positions) + 1}"
        )
    best: Optional[tuple[float, list[tuple[int, int]]]] = None
    for cuts in combinations(positions, workers - 1):
        edges = [0, *cuts, len(costs)]
        ranges = list(zip(edges[:-1], edges[1:]))
        largest = max(sum(costs[first:last]) for first, last in ranges)
        if best is None or largest < best[0]:
            best = (largest, ranges)
    return best[1]
