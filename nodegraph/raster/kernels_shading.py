"""Compiled (numba) kernel for PyTorch3D's Phong shading and blending, fused per pixel, for renders on a CPU.

PyTorch3D shades a frame on the CPU with a dozen full-frame tensor passes (interpolation of positions, normals
and uvs as python gathers and sums, ``F.normalize`` three times, ``grid_sample``, the blend), about four times
as long as rasterizing the cow at 512 px with our kernels. This kernel does the same arithmetic per pixel in
float32, in the same order where the order is visible (``lerp``'s two branches, ``grid_sample``'s corner order,
``F.normalize``'s clamp, the blend's epsilons), so images agree with PyTorch3D's to float rounding. It has no
backward: the shader module calls it only when nothing needs gradients through the shading.

Inputs are arrays prepared by ``shading.py``: face attributes gathered per face (positions, vertex normals,
vertex colours or uvs), and every per-batch property (lights, materials, camera centre, znear/zfar) expanded to
the batch size N.
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
HALF = F32(0.5)
NORM_EPS = F32(1e-6)      # F.normalize(eps=1e-6) in lighting.py
BLEND_EPS = F32(1e-10)    # softmax_rgb_blend's eps

POINT, DIRECTIONAL, AMBIENT = 0, 1, 2     # light_kind (shading.py's _LIGHT_KINDS)
BORDER, ZEROS = 0, 1                      # padding (shading.py's _PADDING)


@njit(cache=True, inline="always")
def interp(b0, b1, b2, attrs, f, d):
    """Component ``d`` of face ``f``'s attribute at barycentrics (b0, b1, b2): ``(bary * vals).sum(-2)``."""
    return b0 * attrs[f, 0, d] + b1 * attrs[f, 1, d] + b2 * attrs[f, 2, d]


@njit(cache=True, inline="always")
def normalized(x, y, z):
    """``F.normalize(v, eps=1e-6)``: v / max(|v|, eps)."""
    norm = F32(math.sqrt(x * x + y * y + z * z))
    if norm < NORM_EPS:
        norm = NORM_EPS
    return x / norm, y / norm, z / norm


@njit(cache=True, inline="always")
def lerp(start, end, weight):
    """``torch.lerp`` as ATen computes it (two branches, for accuracy near both ends)."""
    if abs(weight) < HALF:
        return start + weight * (end - start)
    return end - (end - start) * (ONE - weight)


@njit(cache=True, inline="always")
def source_index(coord, size, align_corners, padding):
    """``grid_sample``'s unnormalised, padded source coordinate along an axis of ``size`` texels."""
    if align_corners:
        c = ((coord + ONE) / TWO) * F32(size - 1)
    else:
        c = ((coord + ONE) * F32(size) - ONE) / TWO
    if padding == BORDER:
        c = min(F32(size - 1), max(c, ZERO))
    return c


@njit(cache=True, inline="always")
def texel(maps, n, u, v, align_corners, padding, nearest):
    """Map ``n`` sampled at uv (u, v) as TexturesUV does, RGB: grid (lerp(-1, 1, u), lerp(1, -1, v)) through
    ``grid_sample`` (bilinear or nearest; border or zeros padding)."""
    hm, wm = maps.shape[1], maps.shape[2]
    ix = source_index(lerp(-ONE, ONE, u), wm, align_corners, padding)
    iy = source_index(lerp(ONE, -ONE, v), hm, align_corners, padding)
    if nearest:
        xi, yi = int(np.rint(ix)), int(np.rint(iy))
        if 0 <= xi < wm and 0 <= yi < hm:
            return maps[n, yi, xi, 0], maps[n, yi, xi, 1], maps[n, yi, xi, 2]
        return ZERO, ZERO, ZERO
    x0 = F32(math.floor(ix))
    y0 = F32(math.floor(iy))
    x1 = x0 + ONE
    y1 = y0 + ONE
    weights = ((x1 - ix) * (y1 - iy), (ix - x0) * (y1 - iy), (x1 - ix) * (iy - y0), (ix - x0) * (iy - y0))
    xa, ya = int(x0), int(y0)
    r = g = b = ZERO
    for corner in range(4):     # nw, ne, sw, se: grid_sample's order of accumulation
        xc = xa + (corner & 1)
        yc = ya + (corner >> 1)
        if 0 <= xc < wm and 0 <= yc < hm:
            wc = weights[corner]
            r += maps[n, yc, xc, 0] * wc
            g += maps[n, yc, xc, 1] * wc
            b += maps[n, yc, xc, 2] * wc
    return r, g, b


@njit(cache=True, inline="always")
def phong_colour(n, f, b0, b1, b2, fverts, fnormals, fcolours, fuvs, maps, uv_mode, align_corners, padding,
                 nearest, light_kind, light_pos, light_amb, light_dif, light_spec, mat_amb, mat_dif, mat_spec,
                 shininess, cam, rgb):
    """``(ambient + diffuse) * texel + specular`` of one fragment into ``rgb`` (phong_shading's colour)."""
    px = interp(b0, b1, b2, fverts, f, 0)
    py = interp(b0, b1, b2, fverts, f, 1)
    pz = interp(b0, b1, b2, fverts, f, 2)
    nx, ny, nz = normalized(interp(b0, b1, b2, fnormals, f, 0), interp(b0, b1, b2, fnormals, f, 1),
                            interp(b0, b1, b2, fnormals, f, 2))
    angle = ZERO
    highlight = ZERO
    if light_kind != AMBIENT:
        if light_kind == POINT:
            dx, dy, dz = normalized(light_pos[n, 0] - px, light_pos[n, 1] - py, light_pos[n, 2] - pz)
        else:
            dx, dy, dz = normalized(light_pos[n, 0], light_pos[n, 1], light_pos[n, 2])
        cos_angle = nx * dx + ny * dy + nz * dz
        angle = max(cos_angle, ZERO)
        vx, vy, vz = normalized(cam[n, 0] - px, cam[n, 1] - py, cam[n, 2] - pz)
        rx = -dx + TWO * (cos_angle * nx)
        ry = -dy + TWO * (cos_angle * ny)
        rz = -dz + TWO * (cos_angle * nz)
        alpha = max(vx * rx + vy * ry + vz * rz, ZERO) * (ONE if cos_angle > ZERO else ZERO)
        highlight = F32(alpha ** shininess[n])
    if uv_mode:
        tex = texel(maps, n, interp(b0, b1, b2, fuvs, f, 0), interp(b0, b1, b2, fuvs, f, 1), align_corners,
                    padding, nearest)
    else:
        tex = (interp(b0, b1, b2, fcolours, f, 0), interp(b0, b1, b2, fcolours, f, 1),
               interp(b0, b1, b2, fcolours, f, 2))
    for c in range(3):
        ambient = mat_amb[n, c] * light_amb[n, c]
        diffuse = mat_dif[n, c] * (light_dif[n, c] * angle)
        specular = mat_spec[n, c] * (light_spec[n, c] * highlight)
        rgb[c] = (ambient + diffuse) * tex[c] + specular


@njit(cache=True, parallel=True)
def shade_phong(p2f, bary, zbuf, dists, fverts, fnormals, fcolours, fuvs, maps, uv_mode, align_corners, padding,
                nearest, light_kind, light_pos, light_amb, light_dif, light_spec, mat_amb, mat_dif, mat_spec,
                shininess, cam, soft, sigma, gamma, background, znear, zfar, n_tasks, out):
    """RGBA images (N, H, W, 4) into ``out``: Phong colours of the K fragments per pixel, blended as
    ``softmax_rgb_blend`` (``soft``) or ``hard_rgb_blend`` does. Rows are split into ``n_tasks`` bands."""
    n_img, h, w, k_max = p2f.shape
    rows = n_img * h
    for t in prange(n_tasks):
        rgb = np.empty(3, np.float32)
        acc = np.empty(3, np.float32)
        for r in range(t * rows // n_tasks, (t + 1) * rows // n_tasks):
            n = r // h
            y = r - n * h
            for x in range(w):
                if p2f[n, y, x, 0] < 0:
                    # no fragment: the background with alpha 0 in both blends (soft: z_inv_max is eps, so
                    # delta = exp(0) = 1 = denom)
                    for c in range(3):
                        out[n, y, x, c] = background[c]
                    out[n, y, x, 3] = ZERO
                    continue
                if not soft:
                    f = p2f[n, y, x, 0]
                    phong_colour(n, f, bary[n, y, x, 0, 0], bary[n, y, x, 0, 1], bary[n, y, x, 0, 2], fverts,
                                 fnormals, fcolours, fuvs, maps, uv_mode, align_corners, padding, nearest,
                                 light_kind, light_pos, light_amb, light_dif, light_spec, mat_amb, mat_dif,
                                 mat_spec, shininess, cam, rgb)
                    for c in range(3):
                        out[n, y, x, c] = rgb[c]
                    out[n, y, x, 3] = ONE
                    continue
                # softmax_rgb_blend: z_inv of a missing fragment is 0 and takes part in the max
                z_inv_max = ZERO
                for k in range(k_max):
                    if p2f[n, y, x, k] >= 0:
                        z_inv = (zfar[n] - zbuf[n, y, x, k]) / (zfar[n] - znear[n])
                        z_inv_max = max(z_inv_max, z_inv)
                z_inv_max = max(z_inv_max, BLEND_EPS)
                transparency = ONE
                weight_sum = ZERO
                for c in range(3):
                    acc[c] = ZERO
                for k in range(k_max):
                    f = p2f[n, y, x, k]
                    if f < 0:
                        continue
                    prob = ONE / (ONE + F32(math.exp(dists[n, y, x, k] / sigma)))
                    transparency *= ONE - prob
                    z_inv = (zfar[n] - zbuf[n, y, x, k]) / (zfar[n] - znear[n])
                    weight = prob * F32(math.exp((z_inv - z_inv_max) / gamma))
                    weight_sum += weight
                    phong_colour(n, f, bary[n, y, x, k, 0], bary[n, y, x, k, 1], bary[n, y, x, k, 2], fverts,
                                 fnormals, fcolours, fuvs, maps, uv_mode, align_corners, padding, nearest,
                                 light_kind, light_pos, light_amb, light_dif, light_spec, mat_amb, mat_dif,
                                 mat_spec, shininess, cam, rgb)
                    for c in range(3):
                        acc[c] += weight * rgb[c]
                delta = max(F32(math.exp((BLEND_EPS - z_inv_max) / gamma)), BLEND_EPS)
                denom = weight_sum + delta
                for c in range(3):
                    out[n, y, x, c] = (acc[c] + delta * background[c]) / denom
                out[n, y, x, 3] = ONE - transparency
