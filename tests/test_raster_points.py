"""The compiled CPU point rasterizer against PyTorch3D's own: identical (idx, zbuf, dists) for scalar and
per-point radii, heterogeneous batches, non-square images, points behind the camera and on pixel centres; and
the same gradients of the points."""
from __future__ import annotations

import pytest
import torch
from pytorch3d.renderer import (AlphaCompositor, FoVOrthographicCameras, PointsRasterizationSettings,
                                PointsRasterizer, PointsRenderer, look_at_view_transform)
from pytorch3d.renderer.points.rasterize_points import rasterize_points as p3d_rasterize_points
from pytorch3d.structures import Pointclouds

from nodegraph.raster import BackendPointsRasterizer, rasterize_points


def clouds(gen: torch.Generator, sizes) -> Pointclouds:
    """Random NDC clouds; some points behind the camera, some exactly on 16 px pixel centres, some at equal
    depth (the lower index must come first)."""
    out = []
    for n in sizes:
        p = torch.rand(n, 3, generator=gen) * 2.2 - 1.1
        p[:, 2] = torch.rand(n, generator=gen) * 3 - 0.3
        q = n // 5
        p[:q, :2] = ((torch.randint(0, 16, (q, 2), generator=gen) * 2 + 1) / 16.0 - 1)
        p[q:2 * q, 2] = 1.0
        out.append(p)
    return Pointclouds(points=out)


CASES = [
    dict(image_size=16, radius=0.1, points_per_pixel=1),
    dict(image_size=(12, 20), radius=0.15, points_per_pixel=8),
    dict(image_size=(20, 12), radius="per-point", points_per_pixel=30),
    dict(image_size=16, radius=0.3, points_per_pixel=100),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_random_clouds_give_pytorch3ds_fragments(case):
    gen = torch.Generator().manual_seed(case)
    sizes = [300, 80, 150][: 1 + case % 3]
    pc = clouds(gen, sizes)
    kw = dict(CASES[case])
    if kw["radius"] == "per-point":
        kw["radius"] = torch.rand(len(sizes), max(sizes), generator=gen) * 0.2
    ours, ref = rasterize_points(pc, **kw), p3d_rasterize_points(pc, **kw)
    for name, a, b in zip(("idx", "zbuf", "dists"), ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), f"{name}: {(a != b).sum()} differ"
    assert (ours[0] >= 0).any()


def test_gradients_through_an_alpha_composited_render_match():
    gen = torch.Generator().manual_seed(7)
    pts = torch.rand(400, 3, generator=gen) - 0.5
    rgb = torch.rand(400, 3, generator=gen)
    R, T = look_at_view_transform(2.0, 10, 20)
    cams = FoVOrthographicCameras(R=R, T=T)
    settings = PointsRasterizationSettings(image_size=24, radius=0.08, points_per_pixel=10)
    grads = []
    for rast in (BackendPointsRasterizer(cameras=cams, raster_settings=settings, backend="numba"),
                 PointsRasterizer(cameras=cams, raster_settings=settings)):
        p = pts.clone().requires_grad_(True)
        images = PointsRenderer(rast, AlphaCompositor())(Pointclouds(points=[p], features=[rgb]))
        (images * torch.linspace(0, 1, 3)).sum().backward()
        grads.append(p.grad.double())
    a, b = grads
    assert b.abs().sum() > 0
    assert torch.dot(a.flatten(), b.flatten()) / (a.norm() * b.norm()) >= 0.9999
    assert (a - b).norm() / b.norm() <= 1e-4
