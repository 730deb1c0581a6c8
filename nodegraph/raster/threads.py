"""How many parallel tasks a kernel call splits into: a few per numba thread, so uneven bands still balance."""
from __future__ import annotations


def tasks(rows: int) -> int:
    """Parallel tasks (bands of image rows) for an image of ``rows`` rows."""
    import numba

    return max(1, min(int(rows), 4 * numba.get_num_threads()))


def workers() -> int:
    """One gradient buffer per numba thread (the backward's memory is threads x faces x 9 doubles)."""
    import numba

    return max(1, int(numba.get_num_threads()))
