"""``rasterize_points`` on the CPU with compiled kernels: PyTorch3D's arguments, PyTorch3D's fragments.

The radius is formatted by PyTorch3D's own helper (a float, or one per point); ``bin_size`` and
``max_points_per_bin`` are accepted and ignored (they never change the result).
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from pytorch3d.renderer.points.rasterize_points import _format_radius
from pytorch3d.renderer.utils import parse_image_size

from .meshes import _grad, _numpy, filled
from .threads import tasks, threads_for, using


class _RasterizePoints(torch.autograd.Function):
    """Forward and backward of the per-pixel rasterization of packed points (P, 3) in NDC."""

    @staticmethod
    def forward(ctx, points, first_idx, num_points, image_size, radius, points_per_pixel):
        from .kernels_points import rasterize_points_forward

        h, w = image_size
        n, k = int(first_idx.shape[0]), int(points_per_pixel)
        ctx.set_materialize_grads(False)
        with using(threads_for(n * h * w * k)) as threads:
            idx = filled((n, h, w, k), -1, np.int32)  # PyTorch3D's CPU idx is int32
            zbuf = filled((n, h, w, k), -1, np.float32)
            dists = filled((n, h, w, k), -1, np.float32)
            rasterize_points_forward(_numpy(points, torch.float32), _numpy(first_idx, torch.int64),
                                     _numpy(num_points, torch.int64), _numpy(radius, torch.float32), h, w, k,
                                     tasks(h, threads), idx, zbuf, dists)
        out = [torch.from_numpy(a).to(points.device) for a in (idx, zbuf, dists)]
        ctx.save_for_backward(points, out[0])
        ctx.mark_non_differentiable(out[0])
        return tuple(out)

    @staticmethod
    def backward(ctx, grad_idx, grad_zbuf, grad_dists):
        from .kernels_points import rasterize_points_backward

        points, idx = ctx.saved_tensors
        (gz, has_z), (gd, has_d) = _grad(grad_zbuf, 4), _grad(grad_dists, 4)
        if not (has_z or has_d):
            return (None,) * 6
        with using(threads_for(idx.numel())) as threads:
            grad = rasterize_points_backward(_numpy(points, torch.float32), _numpy(idx, torch.int32), gz, gd,
                                             has_z, has_d, threads)
        return (torch.from_numpy(grad).to(device=points.device, dtype=points.dtype),) + (None,) * 5


def rasterize_points(pointclouds, image_size: Union[int, list, tuple] = 256,
                     radius: Union[float, list, tuple, torch.Tensor] = 0.01, points_per_pixel: int = 8,
                     bin_size: Optional[int] = None, max_points_per_bin: Optional[int] = None):
    """PyTorch3D's ``rasterize_points`` (same arguments, same ``(idx, zbuf, dists)``), computed by the compiled
    CPU kernels; tensors on another device are copied to the CPU and back."""
    points = pointclouds.points_packed()
    radius = _format_radius(radius, pointclouds)
    return _RasterizePoints.apply(points, pointclouds.cloud_to_packed_first_idx(),
                                  pointclouds.num_points_per_cloud(), parse_image_size(image_size), radius,
                                  points_per_pixel)
