"""``rasterize_meshes`` on the CPU with compiled kernels: PyTorch3D's arguments, PyTorch3D's fragments.

Clipping of faces that cross the near plane (``z_clip_value``) and culling to the frustum stay PyTorch3D's own
python (``pytorch3d.renderer.mesh.clip``); only the per-pixel work, forward and backward, is ours. ``bin_size``
and ``max_faces_per_bin`` are accepted and ignored: the kernel bins by each face's bounding box, and they never
change the result.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from pytorch3d.renderer.mesh.clip import (ClipFrustum, clip_faces,
                                          convert_clipped_rasterization_to_original_faces)
from pytorch3d.renderer.utils import parse_image_size

from .buffers import take
from .threads import tasks, threads_for, using


def _numpy(t: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", dtype).numpy())


def _grad(t: torch.Tensor | None, ndim: int) -> tuple[np.ndarray, bool]:
    """An upstream gradient as float32 numpy, or a placeholder and False when autograd gave none."""
    if t is None:
        return np.zeros((1,) * ndim, np.float32), False
    return _numpy(t, torch.float32), True


def filled(shape: tuple, value, dtype) -> np.ndarray:
    """A new array of ``shape`` holding ``value``, written on the kernel threads."""
    from .kernels_meshes import fill

    a = take(shape, dtype)
    fill(a, dtype(value))
    return a


class _RasterizeFaceVerts(torch.autograd.Function):
    """Forward and backward of the per-pixel rasterization of packed face vertices (F, 3, 3) in NDC."""

    @staticmethod
    def forward(ctx, face_verts, first_idx, num_faces, neighbor_idx, image_size, blur_radius, faces_per_pixel,
                perspective_correct, clip_barycentric_coords, cull_backfaces):
        from .kernels_meshes import rasterize_meshes_forward

        h, w = image_size
        n, k = int(first_idx.shape[0]), int(faces_per_pixel)
        ctx.set_materialize_grads(False)    # a shader that ignores bary or dists passes no zeros for them
        fv = _numpy(face_verts, torch.float32)
        with using(threads_for(n * h * w * k)) as threads:
            p2f = filled((n, h, w, k), -1, np.int64)
            zbuf = filled((n, h, w, k), -1, np.float32)
            bary = filled((n, h, w, k, 3), -1, np.float32)
            dists = filled((n, h, w, k), -1, np.float32)
            rasterize_meshes_forward(fv, _numpy(first_idx, torch.int64), _numpy(num_faces, torch.int64),
                                     _numpy(neighbor_idx, torch.int64), h, w, k, np.float32(blur_radius),
                                     bool(perspective_correct), bool(clip_barycentric_coords),
                                     bool(cull_backfaces), tasks(h, threads), p2f, zbuf, bary, dists)
        device = face_verts.device
        out = [torch.from_numpy(a).to(device) for a in (p2f, zbuf, bary, dists)]
        ctx.save_for_backward(face_verts, out[0])
        ctx.mark_non_differentiable(out[0])
        ctx.flags = (bool(perspective_correct), bool(clip_barycentric_coords))
        return tuple(out)

    @staticmethod
    def backward(ctx, grad_p2f, grad_zbuf, grad_bary, grad_dists):
        from .kernels_meshes import rasterize_meshes_backward

        face_verts, p2f = ctx.saved_tensors
        persp, clip = ctx.flags
        (gz, has_z), (gb, has_b), (gd, has_d) = _grad(grad_zbuf, 4), _grad(grad_bary, 5), _grad(grad_dists, 4)
        if not (has_z or has_b or has_d):
            return (None,) * 10
        with using(threads_for(p2f.numel())) as threads:
            grad = rasterize_meshes_backward(_numpy(face_verts, torch.float32), _numpy(p2f, torch.int64),
                                             gz, gb, gd, has_z, has_b, has_d, persp, clip, threads)
        grad_fv = torch.from_numpy(grad).to(device=face_verts.device, dtype=face_verts.dtype)
        return (grad_fv,) + (None,) * 9


def rasterize_meshes(meshes, image_size: Union[int, list, tuple] = 256, blur_radius: float = 0.0,
                     faces_per_pixel: int = 8, bin_size: Optional[int] = None,
                     max_faces_per_bin: Optional[int] = None, perspective_correct: bool = False,
                     clip_barycentric_coords: bool = False, cull_backfaces: bool = False,
                     z_clip_value: Optional[float] = None, cull_to_frustum: bool = False):
    """PyTorch3D's ``rasterize_meshes`` (same arguments, same ``(pix_to_face, zbuf, bary_coords, dists)``),
    computed by the compiled CPU kernels; tensors on another device are copied to the CPU and back."""
    face_verts = meshes.verts_packed()[meshes.faces_packed()]
    first_idx = meshes.mesh_to_faces_packed_first_idx()
    num_faces = meshes.num_faces_per_mesh()
    im_size = parse_image_size(image_size)
    clipped = None
    if z_clip_value is not None or cull_to_frustum:
        frustum = ClipFrustum(left=-1, right=1, top=-1, bottom=1, perspective_correct=perspective_correct,
                              z_clip_value=z_clip_value, cull=cull_to_frustum)
        clipped = clip_faces(face_verts, first_idx, num_faces, frustum=frustum)
        face_verts = clipped.face_verts
        first_idx, num_faces = clipped.mesh_to_face_first_idx, clipped.num_faces_per_mesh
    neighbor = clipped.clipped_faces_neighbor_idx if clipped is not None else None
    if neighbor is None:
        neighbor = torch.full((face_verts.shape[0],), -1, dtype=torch.int64)
    p2f, zbuf, bary, dists = _RasterizeFaceVerts.apply(face_verts, first_idx, num_faces, neighbor, im_size,
                                                       blur_radius, faces_per_pixel, perspective_correct,
                                                       clip_barycentric_coords, cull_backfaces)
    if clipped is not None:
        p2f, bary = convert_clipped_rasterization_to_original_faces(p2f, bary, clipped)
    return p2f, zbuf, bary, dists
