"""The output pool hands an array out again only once no tensor refers to it, and keeps its free arrays
bounded."""
from __future__ import annotations

import numpy as np
import torch

from nodegraph.raster import buffers


def test_an_array_in_use_is_never_handed_out_and_a_free_one_is():
    buffers.clear()
    shape = (1024, 4096)                                   # 16 MiB of float32: pooled
    first = torch.from_numpy(buffers.take(shape, np.float32))
    view = first[10:20]                                    # a view keeps it in use too
    del first
    second = buffers.take(shape, np.float32)
    assert not np.shares_memory(second, view.numpy())
    second_ptr = second.ctypes.data
    del second
    third = buffers.take(shape, np.float32)               # the free one comes back
    assert third.ctypes.data == second_ptr
    del view
    buffers.clear()


def test_small_and_huge_arrays_are_not_pooled_and_free_ones_stay_bounded():
    buffers.clear()
    assert buffers.take((16, 16), np.float32) is not None and buffers._pool == []
    for _ in range(3):
        buffers.take((buffers.MAX_BYTES // 8 + 1,), np.float64)
    assert buffers._pool == []
    for n in range(1, 8):                                  # distinct shapes, each freed at once
        buffers.take((n, 100 << 20 >> 2), np.float32)     # n x 100 MiB
    free_bytes = sum(a.nbytes for a in buffers._pool)
    assert free_bytes <= buffers.LIMIT_BYTES + buffers.MAX_BYTES
    buffers.clear()
