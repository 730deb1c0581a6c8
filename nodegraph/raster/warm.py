"""Compile (or load from numba's disk cache) every kernel before the first real render needs it.

A fresh install compiles for 30-70 s on two cores; a long-lived process (the editor's worker) starts this in a
background thread when it starts, so the first render waits for whatever is left of that instead of all of it.
"""
from __future__ import annotations

import threading


def warm_up() -> None:
    """Run each kernel once, forward and backward, on a tiny mesh and point cloud; shade with both textures."""
    import torch
    from pytorch3d.renderer import FoVPerspectiveCameras, TexturesUV, TexturesVertex
    from pytorch3d.renderer.mesh.rasterizer import Fragments
    from pytorch3d.structures import Meshes, Pointclouds

    from .meshes import rasterize_meshes
    from .points import rasterize_points
    from .shading import BackendHardPhongShader, BackendSoftPhongShader

    verts = torch.tensor([[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.0, 0.5, 1.5]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize_meshes(Meshes([verts], [faces]), image_size=4, blur_radius=0.01,
                             faces_per_pixel=2, perspective_correct=True, clip_barycentric_coords=True)
    (frags[1].sum() + frags[2].sum() + frags[3].sum()).backward()
    points = verts.detach().clone().requires_grad_(True)
    idx, zbuf, dists = rasterize_points(Pointclouds([points]), image_size=4, radius=0.5, points_per_pixel=2)
    (zbuf.sum() + dists.sum()).backward()
    fragments = Fragments(*frags)
    with torch.no_grad():   # nothing needs gradients: the shaders take the kernel
        uv = TexturesUV(torch.ones(1, 2, 2, 3), [faces], [torch.rand(3, 2)])
        for textures in (TexturesVertex([torch.ones(3, 3)]), uv):
            mesh = Meshes([verts], [faces], textures=textures)
            for shader in (BackendSoftPhongShader, BackendHardPhongShader):
                shader(cameras=FoVPerspectiveCameras(), backend="numba")(fragments, mesh)


def warm_up_in_background() -> threading.Thread | None:
    """Start :func:`warm_up` on a daemon thread (None when numba is unavailable: nothing to compile)."""
    from .backend import numba_problem

    if numba_problem():
        return None
    thread = threading.Thread(target=_quietly, name="raster-warm-up", daemon=True)
    thread.start()
    return thread


def _quietly() -> None:
    try:
        warm_up()
    except Exception:  # a failed warm-up only means the first render compiles; that render reports any error
        pass
