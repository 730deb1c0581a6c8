"""Compiled (numba) kernels for mesh rasterization on a CPU: forward and backward.

The forward visits each face's screen bounding box instead of comparing every pixel with every face, and keeps
the K nearest faces per pixel in the order PyTorch3D's CPU rasterizer does (ascending depth, then face index;
a clipped face's sub-triangle replaces its neighbour when nearer to the pixel). The per-pixel arithmetic
follows PyTorch3D's C++ in float32, operation by operation, so fragments agree bit for bit; its epsilons are
doubles in the C++ (``1e-8`` added to a float area in double precision), and so here.

Work is split into bands of image rows (each a parallel task), and within a band faces are visited in
ascending index, so every pixel sees its faces in PyTorch3D's order and no two tasks write the same pixel.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .threads import configure

configure()

F32 = np.float32
ZERO = F32(0.0)
ONE = F32(1.0)
TWO = F32(2.0)
EPS_F32 = F32(1e-8)     # kEpsilon where the C++ converts it to float (std::max<float>)
CLIP_MIN = F32(1e-5)    # BarycentricClip's floor on the sum of the clipped weights


@njit(cache=True)
def pix_to_ndc(i: int, s1: int, s2: int) -> np.float32:
    """The NDC centre of pixel ``i`` along an axis of ``s1`` pixels (the other axis has ``s2``): PyTorch3D's
    PixToNonSquareNdc in float32."""
    rng = TWO
    if s1 > s2:
        rng = (F32(s1) * rng) / F32(s2)
    offset = rng / TWO
    return -offset + (rng * F32(i) + offset) / F32(s1)


@njit(cache=True)
def pixel_centres(h: int, w: int):
    """NDC x of each output column and y of each output row (+x is left and +y up, so both run backwards)."""
    xs = np.empty(w, np.float32)
    ys = np.empty(h, np.float32)
    for xi in range(w):
        xs[xi] = pix_to_ndc(w - 1 - xi, w, h)
    for yi in range(h):
        ys[yi] = pix_to_ndc(h - 1 - yi, h, w)
    return xs, ys


@njit(cache=True)
def edge(px, py, ax, ay, bx, by):
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


@njit(cache=True)
def bary_area(x0, y0, x1, y1, x2, y2) -> np.float32:
    # the C++ adds a double 1e-8 to the float edge function, then stores a float
    return F32(np.float64(edge(x2, y2, x0, y0, x1, y1)) + 1e-8)


@njit(cache=True)
def barycentric(px, py, x0, y0, x1, y1, x2, y2):
    area = bary_area(x0, y0, x1, y1, x2, y2)
    w0 = edge(px, py, x1, y1, x2, y2) / area
    w1 = edge(px, py, x2, y2, x0, y0) / area
    w2 = edge(px, py, x0, y0, x1, y1) / area
    return w0, w1, w2


@njit(cache=True)
def perspective_correct(w0, w1, w2, z0, z1, z2):
    t0 = w0 * z1 * z2
    t1 = w1 * z0 * z2
    t2 = w2 * z0 * z1
    s = t0 + t1 + t2
    denom = EPS_F32 if s < EPS_F32 else s
    return t0 / denom, t1 / denom, t2 / denom


@njit(cache=True)
def _max0(a):
    return ZERO if a < ZERO else a


@njit(cache=True)
def clip_bary(w0, w1, w2):
    c0 = _max0(w0)
    c1 = _max0(w1)
    c2 = _max0(w2)
    s = c0 + c1 + c2
    s = max(s, CLIP_MIN)   # fmaxf
    return c0 / s, c1 / s, c2 / s


@njit(cache=True)
def point_line_dist(px, py, ax, ay, bx, by):
    vx = bx - ax
    vy = by - ay
    l2 = vx * vx + vy * vy
    if np.float64(l2) <= 1e-8:
        dx = px - bx
        dy = py - by
        return dx * dx + dy * dy
    t = (vx * (px - ax) + vy * (py - ay)) / l2
    tt = ZERO if t < ZERO else t
    tt = ONE if ONE < tt else tt
    qx = px - (ax + tt * vx)
    qy = py - (ay + tt * vy)
    return qx * qx + qy * qy


@njit(cache=True)
def point_triangle_dist(px, py, x0, y0, x1, y1, x2, y2):
    e01 = point_line_dist(px, py, x0, y0, x1, y1)
    e02 = point_line_dist(px, py, x0, y0, x2, y2)
    e12 = point_line_dist(px, py, x1, y1, x2, y2)
    m = e02 if e02 < e01 else e01
    return e12 if e12 < m else m


@njit(cache=True)
def _insert(p2f, zbuf, bary, dists, cnt, n, yi, xi, k_max, z, f, d, b0, b1, b2):
    """Insert (z, f) into the pixel's ascending list of at most ``k_max`` entries (dropped when beyond)."""
    c = cnt[n, yi, xi]
    pos = c
    while pos > 0:
        zp = zbuf[n, yi, xi, pos - 1]
        if z < zp or (z == zp and f < p2f[n, yi, xi, pos - 1]):
            pos -= 1
        else:
            break
    if pos >= k_max:
        return
    last = c if c < k_max else k_max - 1
    j = last
    while j > pos:
        p2f[n, yi, xi, j] = p2f[n, yi, xi, j - 1]
        zbuf[n, yi, xi, j] = zbuf[n, yi, xi, j - 1]
        dists[n, yi, xi, j] = dists[n, yi, xi, j - 1]
        bary[n, yi, xi, j, 0] = bary[n, yi, xi, j - 1, 0]
        bary[n, yi, xi, j, 1] = bary[n, yi, xi, j - 1, 1]
        bary[n, yi, xi, j, 2] = bary[n, yi, xi, j - 1, 2]
        j -= 1
    p2f[n, yi, xi, pos] = f
    zbuf[n, yi, xi, pos] = z
    dists[n, yi, xi, pos] = d
    bary[n, yi, xi, pos, 0] = b0
    bary[n, yi, xi, pos, 1] = b1
    bary[n, yi, xi, pos, 2] = b2
    if c < k_max:
        cnt[n, yi, xi] = c + 1


@njit(cache=True)
def _remove(p2f, zbuf, bary, dists, cnt, n, yi, xi, j):
    c = cnt[n, yi, xi]
    for i in range(j, c - 1):
        p2f[n, yi, xi, i] = p2f[n, yi, xi, i + 1]
        zbuf[n, yi, xi, i] = zbuf[n, yi, xi, i + 1]
        dists[n, yi, xi, i] = dists[n, yi, xi, i + 1]
        bary[n, yi, xi, i, 0] = bary[n, yi, xi, i + 1, 0]
        bary[n, yi, xi, i, 1] = bary[n, yi, xi, i + 1, 1]
        bary[n, yi, xi, i, 2] = bary[n, yi, xi, i + 1, 2]
    p2f[n, yi, xi, c - 1] = -1
    zbuf[n, yi, xi, c - 1] = -ONE
    dists[n, yi, xi, c - 1] = -ONE
    bary[n, yi, xi, c - 1, 0] = -ONE
    bary[n, yi, xi, c - 1, 1] = -ONE
    bary[n, yi, xi, c - 1, 2] = -ONE
    cnt[n, yi, xi] = c - 1


@njit(cache=True)
def _index_range(lo, hi, offset, rng, size):
    """Pixel indices (along an axis of ``size``) whose centres may lie in [lo, hi], padded by a pixel: the
    exact float test is made per pixel afterwards."""
    a = (np.float64(lo) + offset) * size / rng - 0.5
    b = (np.float64(hi) + offset) * size / rng - 0.5
    if not (b >= -2.0) or not (a <= size + 1.0):   # also catches NaN
        return 0, -1
    i0 = int(math.floor(a)) - 1 if a > -2.0 else 0
    i1 = int(math.ceil(b)) + 1 if b < size + 1.0 else size - 1
    return max(i0, 0), min(i1, size - 1)


@njit(cache=True, parallel=True)
def rasterize_meshes_forward(face_verts, first_idx, num_faces, neighbor_idx, h, w, k_max, blur_radius,
                             persp, clip, cull, n_bands, p2f, zbuf, bary, dists):
    """Fill ``p2f``, ``zbuf``, ``bary``, ``dists`` ((N, H, W, K[, 3]), pre-filled with -1) for every mesh."""
    n_meshes = first_idx.shape[0]
    n_faces = face_verts.shape[0]
    xs, ys = pixel_centres(h, w)
    cnt = np.zeros((n_meshes, h, w), np.int32)
    sqrt_blur = np.sqrt(blur_radius)
    rng_x = F32(2.0) if w <= h else (F32(w) * TWO) / F32(h)
    rng_y = F32(2.0) if h <= w else (F32(h) * TWO) / F32(w)
    off_x = np.float64(rng_x / TWO)
    off_y = np.float64(rng_y / TWO)

    areas = np.empty(n_faces, np.float32)
    boxes = np.empty((n_faces, 5), np.float32)
    for f in prange(n_faces):
        x0, y0, z0 = face_verts[f, 0, 0], face_verts[f, 0, 1], face_verts[f, 0, 2]
        x1, y1, z1 = face_verts[f, 1, 0], face_verts[f, 1, 1], face_verts[f, 1, 2]
        x2, y2, z2 = face_verts[f, 2, 0], face_verts[f, 2, 1], face_verts[f, 2, 2]
        areas[f] = edge(x0, y0, x1, y1, x2, y2)
        boxes[f, 0] = min(x0, min(x1, x2))
        boxes[f, 1] = min(y0, min(y1, y2))
        boxes[f, 2] = max(x0, max(x1, x2))
        boxes[f, 3] = max(y0, max(y1, y2))
        boxes[f, 4] = min(z0, min(z1, z2))

    rows = (h + n_bands - 1) // n_bands
    for task in prange(n_meshes * n_bands):
        n = task // n_bands
        band = task % n_bands
        row0 = band * rows
        row1 = min(h, row0 + rows)
        if row0 >= row1:
            continue
        start = first_idx[n]
        stop = start + num_faces[n]
        for f in range(start, stop):
            area = areas[f]
            if cull and area < ZERO:
                continue
            if np.float64(area) <= 1e-8 and np.float64(area) >= -1e-8:
                continue
            if np.float64(boxes[f, 4]) < 1e-8:
                continue
            x_min = boxes[f, 0] - sqrt_blur
            y_min = boxes[f, 1] - sqrt_blur
            x_max = boxes[f, 2] + sqrt_blur
            y_max = boxes[f, 3] + sqrt_blur
            # output column xi holds x index W-1-xi, row yi holds y index H-1-yi
            ix0, ix1 = _index_range(x_min, x_max, off_x, np.float64(rng_x), w)
            iy0, iy1 = _index_range(y_min, y_max, off_y, np.float64(rng_y), h)
            if ix0 > ix1 or iy0 > iy1:
                continue
            yi_lo = max(row0, h - 1 - iy1)
            yi_hi = min(row1 - 1, h - 1 - iy0)
            if yi_lo > yi_hi:
                continue
            x0, y0, z0 = face_verts[f, 0, 0], face_verts[f, 0, 1], face_verts[f, 0, 2]
            x1, y1, z1 = face_verts[f, 1, 0], face_verts[f, 1, 1], face_verts[f, 1, 2]
            x2, y2, z2 = face_verts[f, 2, 0], face_verts[f, 2, 1], face_verts[f, 2, 2]
            nb = neighbor_idx[f]
            for yi in range(yi_lo, yi_hi + 1):
                py = ys[yi]
                if py > y_max or py < y_min:
                    continue
                for xi in range(w - 1 - ix1, w - ix0):
                    px = xs[xi]
                    if px > x_max or px < x_min:
                        continue
                    w0, w1, w2 = barycentric(px, py, x0, y0, x1, y1, x2, y2)
                    if persp:
                        w0, w1, w2 = perspective_correct(w0, w1, w2, z0, z1, z2)
                    c0, c1, c2 = w0, w1, w2
                    if clip:
                        c0, c1, c2 = clip_bary(w0, w1, w2)
                    pz = c0 * z0 + c1 * z1 + c2 * z2
                    if pz < ZERO:
                        continue
                    dist = point_triangle_dist(px, py, x0, y0, x1, y1, x2, y2)
                    inside = w0 > ZERO and w1 > ZERO and w2 > ZERO
                    if not inside and dist >= blur_radius:
                        continue
                    sd = -dist if inside else dist
                    if nb != -1:
                        found = -1
                        for j in range(cnt[n, yi, xi]):
                            if p2f[n, yi, xi, j] == nb:
                                found = j
                                break
                        if found != -1:
                            if dist < abs(dists[n, yi, xi, found]):
                                _remove(p2f, zbuf, bary, dists, cnt, n, yi, xi, found)
                                _insert(p2f, zbuf, bary, dists, cnt, n, yi, xi, k_max, pz, f, sd, c0, c1, c2)
                            continue
                    _insert(p2f, zbuf, bary, dists, cnt, n, yi, xi, k_max, pz, f, sd, c0, c1, c2)


# ---------------------------------------------------------------------------------------- backward


@njit(cache=True)
def _point_line_dist_backward(px, py, ax, ay, bx, by, g):
    vx = bx - ax
    vy = by - ay
    t_bot = vx * vx + vy * vy
    t_top = vx * (px - ax) + vy * (py - ay)
    t = t_top / t_bot
    tt = ZERO if t < ZERO else t
    tt = ONE if ONE < tt else tt
    qx = (ONE - tt) * ax + tt * bx
    qy = (ONE - tt) * ay + tt * by
    sa = g * (ONE - tt) * TWO
    sb = g * tt * TWO
    return sa * (qx - px), sa * (qy - py), sb * (qx - px), sb * (qy - py)


@njit(cache=True)
def _edge_backward(px, py, ax, ay, bx, by, g):
    """d edge(p, a, b) / d (p, a, b) times ``g``: (dpx, dpy, dax, day, dbx, dby)."""
    return (g * (by - ay), g * (ax - bx), g * (py - by), g * (bx - px), g * (ay - py), g * (px - ax))


@njit(cache=True)
def _accumulate_face(out, f, px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2, g_dist, g_z, gb0, gb1, gb2, persp,
                     clip):
    b00, b01, b02 = barycentric(px, py, x0, y0, x1, y1, x2, y2)
    w0, w1, w2 = b00, b01, b02
    if persp:
        w0, w1, w2 = perspective_correct(b00, b01, b02, z0, z1, z2)
    c0, c1, c2 = w0, w1, w2
    if clip:
        c0, c1, c2 = clip_bary(w0, w1, w2)
    inside = w0 > ZERO and w1 > ZERO and w2 > ZERO
    gd = (-ONE if inside else ONE) * g_dist

    # distance: the gradient flows through the nearest edge only
    e01 = point_line_dist(px, py, x0, y0, x1, y1)
    e02 = point_line_dist(px, py, x0, y0, x2, y2)
    e12 = point_line_dist(px, py, x1, y1, x2, y2)
    d0x = d0y = d1x = d1y = d2x = d2y = ZERO
    if e01 <= e02 and e01 <= e12:
        d0x, d0y, d1x, d1y = _point_line_dist_backward(px, py, x0, y0, x1, y1, gd)
    elif e02 <= e01 and e02 <= e12:
        d0x, d0y, d2x, d2y = _point_line_dist_backward(px, py, x0, y0, x2, y2, gd)
    elif e12 <= e01 and e12 <= e02:
        d1x, d1y, d2x, d2y = _point_line_dist_backward(px, py, x1, y1, x2, y2, gd)

    # barycentrics: upstream plus the zbuf's share (zbuf = sum of clipped weights times z)
    g0 = gb0 + g_z * z0
    g1 = gb1 + g_z * z1
    g2 = gb2 + g_z * z2
    if clip:
        m0, m1, m2 = _max0(w0), _max0(w1), _max0(w2)
        s = m0 + m1 + m2
        keep = ONE
        if np.float64(s) < 1e-5:
            keep = ZERO
            s = CLIP_MIN
        s2 = s * s
        q0 = -m0 / s2 * keep
        q1 = -m1 / s2 * keep
        q2 = -m2 / s2 * keep
        inv = ONE / s
        n0 = (ZERO if w0 < ZERO else ONE) * (g0 * (inv + q0) + g1 * q1 + g2 * q2)
        n1 = (ZERO if w1 < ZERO else ONE) * (g1 * (inv + q1) + g0 * q0 + g2 * q2)
        n2 = (ZERO if w2 < ZERO else ONE) * (g2 * (inv + q2) + g0 * q0 + g1 * q1)
        g0, g1, g2 = n0, n1, n2
    if persp:
        t0 = b00 * z1 * z2
        t1 = b01 * z0 * z2
        t2 = b02 * z0 * z1
        s = t0 + t1 + t2
        denom = EPS_F32 if s < EPS_F32 else s
        g_den = (-t0 * g0 - t1 * g1 - t2 * g2) / (denom * denom)
        gt0 = g_den + g0 / denom
        gt1 = g_den + g1 / denom
        gt2 = g_den + g2 / denom
        out[f, 0, 2] += gt1 * b01 * z2 + gt2 * b02 * z1
        out[f, 1, 2] += gt0 * b00 * z2 + gt2 * b02 * z0
        out[f, 2, 2] += gt0 * b00 * z1 + gt1 * b01 * z0
        g0, g1, g2 = gt0 * z1 * z2, gt1 * z0 * z2, gt2 * z0 * z1

    area = bary_area(x0, y0, x1, y1, x2, y2)
    area2 = area * area
    inv_area = ONE / area
    e0 = edge(px, py, x1, y1, x2, y2)
    e1 = edge(px, py, x2, y2, x0, y0)
    e2 = edge(px, py, x0, y0, x1, y1)
    # w_i = e_i / area, area = edge(v2, v0, v1): (d v2, d v0, d v1) of the area term
    _, _, a1x, a1y, a2x, a2y = _edge_backward(px, py, x1, y1, x2, y2, g0 * inv_area)
    r2x, r2y, r0x, r0y, r1x, r1y = _edge_backward(x2, y2, x0, y0, x1, y1, g0 * (-e0 / area2))
    v0x, v0y = r0x, r0y
    v1x, v1y = a1x + r1x, a1y + r1y
    v2x, v2y = a2x + r2x, a2y + r2y
    _, _, b2x, b2y, b0x, b0y = _edge_backward(px, py, x2, y2, x0, y0, g1 * inv_area)
    r2x, r2y, r0x, r0y, r1x, r1y = _edge_backward(x2, y2, x0, y0, x1, y1, g1 * (-e1 / area2))
    v0x, v0y = v0x + (b0x + r0x), v0y + (b0y + r0y)
    v1x, v1y = v1x + r1x, v1y + r1y
    v2x, v2y = v2x + (b2x + r2x), v2y + (b2y + r2y)
    _, _, c0x, c0y, c1x, c1y = _edge_backward(px, py, x0, y0, x1, y1, g2 * inv_area)
    r2x, r2y, r0x, r0y, r1x, r1y = _edge_backward(x2, y2, x0, y0, x1, y1, g2 * (-e2 / area2))
    v0x, v0y = v0x + (c0x + r0x), v0y + (c0y + r0y)
    v1x, v1y = v1x + (c1x + r1x), v1y + (c1y + r1y)
    v2x, v2y = v2x + r2x, v2y + r2y

    out[f, 0, 0] += v0x + d0x
    out[f, 0, 1] += v0y + d0y
    out[f, 0, 2] += g_z * c0
    out[f, 1, 0] += v1x + d1x
    out[f, 1, 1] += v1y + d1y
    out[f, 1, 2] += g_z * c1
    out[f, 2, 0] += v2x + d2x
    out[f, 2, 1] += v2y + d2y
    out[f, 2, 2] += g_z * c2


@njit(cache=True, parallel=True)
def fill(a, value):
    """``a[...] = value`` on all threads (the first touch of a fresh output's pages is most of its cost)."""
    flat = a.reshape(-1)
    n = flat.shape[0]
    step = 1 << 16
    for c in prange((n + step - 1) // step):
        flat[c * step:min(n, (c + 1) * step)] = value


@njit(cache=True, parallel=True)
def rasterize_meshes_backward(face_verts, p2f, grad_zbuf, grad_bary, grad_dists, has_z, has_bary, has_dists,
                              persp, clip, n_chunks):
    """d loss / d face_verts (F, 3, 3) from the gradients of zbuf, bary_coords and dists (each may be absent:
    ``has_*`` False, its array a placeholder); each chunk of rows sums into its own float64 buffer (no races),
    then the buffers are added."""
    n_faces = face_verts.shape[0]
    n_meshes, h, w, k_max = p2f.shape
    xs, ys = pixel_centres(h, w)
    total = n_meshes * h
    rows = (total + n_chunks - 1) // n_chunks
    parts = np.zeros((n_chunks, n_faces, 3, 3), np.float64)
    for c in prange(n_chunks):
        out = parts[c]
        for r in range(c * rows, min(total, (c + 1) * rows)):
            n = r // h
            yi = r % h
            py = ys[yi]
            for xi in range(w):
                px = xs[xi]
                for k in range(k_max):
                    f = p2f[n, yi, xi, k]
                    if f < 0:
                        continue
                    g_d = grad_dists[n, yi, xi, k] if has_dists else ZERO
                    g_z = grad_zbuf[n, yi, xi, k] if has_z else ZERO
                    gb0 = gb1 = gb2 = ZERO
                    if has_bary:
                        gb0 = grad_bary[n, yi, xi, k, 0]
                        gb1 = grad_bary[n, yi, xi, k, 1]
                        gb2 = grad_bary[n, yi, xi, k, 2]
                    _accumulate_face(out, f, px, py,
                                     face_verts[f, 0, 0], face_verts[f, 0, 1], face_verts[f, 0, 2],
                                     face_verts[f, 1, 0], face_verts[f, 1, 1], face_verts[f, 1, 2],
                                     face_verts[f, 2, 0], face_verts[f, 2, 1], face_verts[f, 2, 2],
                                     g_d, g_z, gb0, gb1, gb2, persp, clip)
    result = np.zeros((n_faces, 3, 3), np.float32)
    for f in prange(n_faces):
        for i in range(3):
            for j in range(3):
                acc = 0.0
                for c in range(n_chunks):
                    acc += parts[c, f, i, j]
                result[f, i, j] = acc
    return result
