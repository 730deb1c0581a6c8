"""PyTorch3D's ``MeshRasterizer`` and ``PointsRasterizer`` with a choice of rasterization backend.

Each subclass keeps PyTorch3D's own camera transform and settings logic (``clip_barycentric_coords`` on when
blurred, ``perspective_correct`` and ``z_clip_value`` from the camera) and only swaps the function that turns
NDC primitives into fragments, so shaders, blending, compositors and textures stay PyTorch3D's. ``backend`` is
``"auto"`` (ours on a CPU, PyTorch3D's on CUDA), ``"numba"`` or ``"pytorch3d"``; ``last_backend`` says which ran.
"""
from __future__ import annotations

import torch
from pytorch3d.renderer import MeshRasterizer as _MeshRasterizer
from pytorch3d.renderer import PointsRasterizer as _PointsRasterizer
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.renderer.points.rasterizer import PointFragments

from .backend import BACKENDS, choose, record

__all__ = ["BACKENDS", "BackendMeshRasterizer", "BackendPointsRasterizer"]


def _resolve_z_clip(settings, cameras, perspective_correct: bool):
    if settings.z_clip_value is not None:
        return settings.z_clip_value
    znear = cameras.get_znear()
    if isinstance(znear, torch.Tensor):
        znear = znear.min().item()
    return None if not perspective_correct or znear is None else znear / 2


class _BackendChoice:
    """What both rasterizers add to PyTorch3D's: a ``backend`` param, and which backend ran (counted)."""

    def __init__(self, cameras=None, raster_settings=None, backend: str = "auto") -> None:
        super().__init__(cameras=cameras, raster_settings=raster_settings)
        self.backend = backend
        self.last_backend: str | None = None

    def _choose(self, kind: str, device) -> str:
        """The backend that rasterizes ``kind`` ("meshes" or "points") on ``device`` now, recorded."""
        chosen = choose(self.backend, device)
        self.last_backend = chosen
        record(kind, chosen)
        return chosen


class BackendMeshRasterizer(_BackendChoice, _MeshRasterizer):
    """``MeshRasterizer`` whose fragments come from ``backend`` (see the module doc)."""

    def forward(self, meshes_world, **kwargs) -> Fragments:
        if self._choose("meshes", meshes_world.device) == "pytorch3d":
            return super().forward(meshes_world, **kwargs)
        from .meshes import rasterize_meshes

        meshes_proj = self.transform(meshes_world, **kwargs)
        settings = kwargs.get("raster_settings", self.raster_settings)
        cameras = kwargs.get("cameras", self.cameras)
        clip_bary = settings.clip_barycentric_coords
        if clip_bary is None:
            clip_bary = settings.blur_radius > 0.0
        persp = settings.perspective_correct
        if persp is None:
            persp = cameras.is_perspective()
        p2f, zbuf, bary, dists = rasterize_meshes(
            meshes_proj, image_size=settings.image_size, blur_radius=settings.blur_radius,
            faces_per_pixel=settings.faces_per_pixel, perspective_correct=persp,
            clip_barycentric_coords=clip_bary, cull_backfaces=settings.cull_backfaces,
            z_clip_value=_resolve_z_clip(settings, cameras, persp), cull_to_frustum=settings.cull_to_frustum)
        return Fragments(pix_to_face=p2f, zbuf=zbuf, bary_coords=bary, dists=dists)


class BackendPointsRasterizer(_BackendChoice, _PointsRasterizer):
    """``PointsRasterizer`` whose fragments come from ``backend`` (see the module doc)."""

    def forward(self, point_clouds, **kwargs) -> PointFragments:
        if self._choose("points", point_clouds.device) == "pytorch3d":
            return super().forward(point_clouds, **kwargs)
        from .points import rasterize_points

        points_proj = self.transform(point_clouds, **kwargs)
        settings = kwargs.get("raster_settings", self.raster_settings)
        idx, zbuf, dists = rasterize_points(points_proj, image_size=settings.image_size, radius=settings.radius,
                                            points_per_pixel=settings.points_per_pixel)
        return PointFragments(idx=idx, zbuf=zbuf, dists=dists)

