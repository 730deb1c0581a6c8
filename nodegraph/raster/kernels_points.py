"""Compiled (numba) kernels for point-cloud rasterization on a CPU: forward and backward.

Each point visits the pixels of its own square (centre +- radius) instead of every pixel visiting every point;
a pixel keeps its K nearest points by (depth, point index), the order PyTorch3D's CPU priority queue gives,
with PyTorch3D's float32 arithmetic (``dist2 = dx * dx + dy * dy < radius * radius``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .kernels_meshes import ZERO, _index_range, pixel_centres

F32 = np.float32
TWO = F32(2.0)


@njit(cache=True)
def _insert(idx, zbuf, dists, cnt, n, yi, xi, k_max, z, p, d):
    c = cnt[n, yi, xi]
    pos = c
    while pos > 0:
        zp = zbuf[n, yi, xi, pos - 1]
        if z < zp or (z == zp and p < idx[n, yi, xi, pos - 1]):
            pos -= 1
        else:
            break
    if pos >= k_max:
        return
    j = c if c < k_max else k_max - 1
    while j > pos:
        idx[n, yi, xi, j] = idx[n, yi, xi, j - 1]
        zbuf[n, yi, xi, j] = zbuf[n, yi, xi, j - 1]
        dists[n, yi, xi, j] = dists[n, yi, xi, j - 1]
        j -= 1
    idx[n, yi, xi, pos] = p
    zbuf[n, yi, xi, pos] = z
    dists[n, yi, xi, pos] = d
    if c < k_max:
        cnt[n, yi, xi] = c + 1


@njit(cache=True, parallel=True)
def rasterize_points_forward(points, first_idx, num_points, radius, h, w, k_max, n_bands, idx, zbuf, dists):
    """Fill ``idx``, ``zbuf``, ``dists`` ((N, H, W, K), pre-filled with -1) for every cloud."""
    n_clouds = first_idx.shape[0]
    xs, ys = pixel_centres(h, w)
    cnt = np.zeros((n_clouds, h, w), np.int32)
    rng_x = F32(2.0) if w <= h else (F32(w) * TWO) / F32(h)
    rng_y = F32(2.0) if h <= w else (F32(h) * TWO) / F32(w)
    off_x = np.float64(rng_x / TWO)
    off_y = np.float64(rng_y / TWO)
    rows = (h + n_bands - 1) // n_bands
    for task in prange(n_clouds * n_bands):
        n = task // n_bands
        band = task % n_bands
        row0 = band * rows
        row1 = min(h, row0 + rows)
        if row0 >= row1:
            continue
        start = first_idx[n]
        for p in range(start, start + num_points[n]):
            px = points[p, 0]
            py = points[p, 1]
            pz = points[p, 2]
            r = radius[p]
            r2 = r * r
            if pz < ZERO:
                continue
            ix0, ix1 = _index_range(px - r, px + r, off_x, np.float64(rng_x), w)
            iy0, iy1 = _index_range(py - r, py + r, off_y, np.float64(rng_y), h)
            if ix0 > ix1 or iy0 > iy1:
                continue
            yi_lo = max(row0, h - 1 - iy1)
            yi_hi = min(row1 - 1, h - 1 - iy0)
            for yi in range(yi_lo, yi_hi + 1):
                dy = py - ys[yi]
                for xi in range(w - 1 - ix1, w - ix0):
                    dx = px - xs[xi]
                    d2 = dx * dx + dy * dy
                    if d2 < r2:
                        _insert(idx, zbuf, dists, cnt, n, yi, xi, k_max, pz, p, d2)


@njit(cache=True, parallel=True)
def rasterize_points_backward(points, idx, grad_zbuf, grad_dists, has_z, has_dists, n_chunks):
    """d loss / d points (P, 3) from the gradients of zbuf and dists (either may be absent: ``has_*`` False);
    per-chunk float64 sums, then added."""
    n_points = points.shape[0]
    n_clouds, h, w, k_max = idx.shape
    xs, ys = pixel_centres(h, w)
    total = n_clouds * h
    rows = (total + n_chunks - 1) // n_chunks
    parts = np.zeros((n_chunks, n_points, 3), np.float64)
    for c in prange(n_chunks):
        out = parts[c]
        for r in range(c * rows, min(total, (c + 1) * rows)):
            n = r // h
            yi = r % h
            for xi in range(w):
                for k in range(k_max):
                    p = idx[n, yi, xi, k]
                    if p < 0:
                        break
                    if has_dists:
                        g = grad_dists[n, yi, xi, k]
                        out[p, 0] += TWO * g * (points[p, 0] - xs[xi])
                        out[p, 1] += TWO * g * (points[p, 1] - ys[yi])
                    if has_z:
                        out[p, 2] += grad_zbuf[n, yi, xi, k]
    result = np.zeros((n_points, 3), np.float32)
    for p in prange(n_points):
        for j in range(3):
            acc = 0.0
            for c in range(n_chunks):
                acc += parts[c, p, j]
            result[p, j] = acc
    return result
