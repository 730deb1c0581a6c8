"""How many numba threads and parallel tasks a kernel call uses.

Measured on a shared 2-core machine: a small frame (the cow at 512 px, one face per pixel: ~5 ms) is several
times slower on two threads than on one, because waking a second thread on a busy core costs more than the
work; a frame with ~100 faces per pixel gains from both. So calls below ``SERIAL_BELOW`` output entries run on
one thread, larger ones on all of numba's (``NUMBA_NUM_THREADS``), each thread taking a few bands of rows.

Numba's own "workqueue" threading layer is used unless ``NUMBA_THREADING_LAYER`` says otherwise: with its
"omp" layer a second OpenMP runtime spins beside torch's, and on two cores both slowed down by 3-5x (torch's
tiny camera-transform matmuls included). workqueue is not re-entrant, so kernel calls are serialised by a lock.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.RLock()


def configure() -> None:
    """Pick the threading layer before the first parallel kernel runs (kept if the user chose one)."""
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"

SERIAL_BELOW = 2_000_000  # N * H * W * K


def threads_for(entries: int) -> int:
    """Threads for a call that fills ``entries`` output slots (N * H * W * K)."""
    import numba

    return 1 if entries < SERIAL_BELOW else max(1, int(numba.config.NUMBA_NUM_THREADS))


@contextmanager
def using(threads: int) -> Iterator[int]:
    """Run the enclosed kernel calls on ``threads`` numba threads (restored afterwards)."""
    import numba

    with _lock:
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            yield threads
        finally:
            numba.set_num_threads(before)


def tasks(rows: int, threads: int) -> int:
    """Parallel tasks (bands of image rows) for an image of ``rows`` rows on ``threads`` threads."""
    return 1 if threads == 1 else max(1, min(int(rows), 4 * threads))
