"""The compiled CPU mesh rasterizer against PyTorch3D's own, on the same inputs: identical fragments (face
indices, depths, barycentrics, distances) for hard and soft settings and every edge case the issue lists, and the
same vertex gradients through zbuf, barycentrics and distances.

PyTorch3D's CPU rasterizer compares every pixel with every face, so the reference side is kept small (a few
hundred faces, images of 16..48 px) except the one full-size cow comparison.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.renderer import (FoVOrthographicCameras, FoVPerspectiveCameras, MeshRasterizer,
                                RasterizationSettings, look_at_view_transform)
from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes as p3d_rasterize_meshes
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

from nodegraph.raster import BackendMeshRasterizer, rasterize_meshes

COW = Path(__file__).resolve().parent.parent / "graphs" / "assets" / "cow_mesh" / "cow.obj"


def assert_same_fragments(ours, ref, what: str = "") -> None:
    """Every output equal: bit for bit (the kernels do PyTorch3D's float32 arithmetic)."""
    names = ("pix_to_face", "zbuf", "bary_coords", "dists")
    for name, a, b in zip(names, ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what} {name}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        bad = (a != b).sum().item()
        assert bad == 0, f"{what} {name}: {bad} of {a.numel()} differ (max {(a.double() - b.double()).abs().max()})"


def random_ndc_mesh(gen: torch.Generator, faces: int, z_range=(0.2, 3.0)) -> Meshes:
    """Triangles soup in NDC: random, plus degenerate (a repeated vertex, collinear), slivers, faces with a
    vertex behind the camera (z < 0) and vertices exactly on pixel centres of a 16 px grid."""
    verts = torch.rand(faces, 3, 3, generator=gen) * 2.2 - 1.1
    verts[..., 2] = torch.rand(faces, 3, generator=gen) * (z_range[1] - z_range[0]) + z_range[0]
    q = faces // 8
    verts[:q, 1] = verts[:q, 0]                                           # degenerate: repeated vertex
    verts[q:2 * q, 2, :2] = (verts[q:2 * q, 0, :2] + verts[q:2 * q, 1, :2]) / 2        # collinear
    verts[2 * q:3 * q, 2, :2] = verts[2 * q:3 * q, 0, :2] + 1e-3 * torch.randn(q, 2, generator=gen)  # slivers
    verts[3 * q:4 * q, 0, 2] = -0.5                                       # a vertex behind the camera
    centres = (torch.arange(16) * 2 + 1) / 16.0 - 1                       # pixel centres of a 16 px image
    pick = torch.randint(0, 16, (q, 3, 2), generator=gen)
    verts[4 * q:5 * q, :, :2] = centres[pick]                             # vertices exactly on pixel centres
    return Meshes(verts=[verts.reshape(-1, 3)], faces=[torch.arange(faces * 3).reshape(faces, 3)])


def batch(gen, sizes) -> Meshes:
    parts = [random_ndc_mesh(gen, n) for n in sizes]
    return Meshes(verts=[m.verts_packed() for m in parts], faces=[m.faces_packed() for m in parts])


SETTINGS = [
    dict(image_size=16, faces_per_pixel=1),
    dict(image_size=(12, 20), faces_per_pixel=3, perspective_correct=True),
    dict(image_size=(20, 12), faces_per_pixel=5, cull_backfaces=True),
    dict(image_size=16, blur_radius=0.01, faces_per_pixel=10, clip_barycentric_coords=True),
    dict(image_size=(16, 24), blur_radius=0.002, faces_per_pixel=100, perspective_correct=True,
         clip_barycentric_coords=True, cull_backfaces=True),
    dict(image_size=16, blur_radius=0.05, faces_per_pixel=7, perspective_correct=True),
    dict(image_size=(18, 14), faces_per_pixel=4, perspective_correct=True, z_clip_value=0.5),
    dict(image_size=16, blur_radius=0.01, faces_per_pixel=20, perspective_correct=True,
         clip_barycentric_coords=True, z_clip_value=1.0, cull_to_frustum=True),
]


@pytest.mark.parametrize("case", range(len(SETTINGS)))
def test_random_meshes_give_pytorch3ds_fragments(case):
    gen = torch.Generator().manual_seed(case)
    meshes = batch(gen, [120, 40, 200][: 1 + case % 3])       # heterogeneous batches of 1..3 meshes
    kw = SETTINGS[case]
    assert_same_fragments(rasterize_meshes(meshes, **kw), p3d_rasterize_meshes(meshes, **kw), str(kw))


def test_a_batch_with_an_empty_share_and_overlapping_coplanar_faces():
    """Two faces at the same depth over the same pixels: the lower index comes first, as in PyTorch3D."""
    tri = torch.tensor([[-0.9, -0.9, 1.0], [0.9, -0.9, 1.0], [0.0, 0.9, 1.0]])
    verts = torch.cat([tri, tri, tri * torch.tensor([1.0, 1.0, 2.0])])
    meshes = Meshes(verts=[verts, tri], faces=[torch.arange(9).reshape(3, 3), torch.arange(3).reshape(1, 3)])
    for kw in (dict(image_size=16, faces_per_pixel=3), dict(image_size=16, faces_per_pixel=2, blur_radius=0.02)):
        ours, ref = rasterize_meshes(meshes, **kw), p3d_rasterize_meshes(meshes, **kw)
        assert_same_fragments(ours, ref, str(kw))
        assert (ours[0][0, 8, 8, :2] == torch.tensor([0, 1])).all()


def rasterizers(cameras, settings):
    return (BackendMeshRasterizer(cameras=cameras, raster_settings=settings, backend="numba"),
            MeshRasterizer(cameras=cameras, raster_settings=settings))


@pytest.mark.parametrize("ortho", [False, True])
def test_through_the_rasterizer_with_cameras_and_a_mesh_crossing_the_near_plane(ortho):
    """Perspective (z_clip from znear: faces crossing it are clipped and split) and orthographic cameras."""
    sphere = ico_sphere(2)
    R, T = look_at_view_transform(dist=1.05, elev=20, azim=30)       # the camera inside the sphere's reach
    cams = (FoVOrthographicCameras if ortho else FoVPerspectiveCameras)(R=R, T=T, znear=0.6)
    settings = RasterizationSettings(image_size=(24, 32), blur_radius=1e-3, faces_per_pixel=6)
    ours, ref = (r(sphere) for r in rasterizers(cams, settings))
    assert_same_fragments((ours.pix_to_face, ours.zbuf, ours.bary_coords, ours.dists),
                          (ref.pix_to_face, ref.zbuf, ref.bary_coords, ref.dists), f"ortho={ortho}")
    assert (ours.pix_to_face >= 0).float().mean() > 0.2
    z = cams.get_world_to_view_transform().transform_points(sphere.verts_packed())[:, 2][sphere.faces_packed()]
    assert ((z.min(1).values < 0.3) & (z.max(1).values > 0.3)).any()     # some faces cross z_clip = znear / 2


def test_the_cow_at_512_is_identical():
    """The tutorial's frame: the textured cow, 512 x 512, hard (PyTorch3D's side takes seconds)."""
    cow = load_objs_as_meshes([str(COW)])
    R, T = look_at_view_transform(2.7, 0, 180)
    cams = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=512, blur_radius=0.0, faces_per_pixel=1)
    ours, ref = (r(cow) for r in rasterizers(cams, settings))
    assert_same_fragments((ours.pix_to_face, ours.zbuf, ours.bary_coords, ours.dists),
                          (ref.pix_to_face, ref.zbuf, ref.bary_coords, ref.dists), "cow 512")
    assert (ours.pix_to_face >= 0).sum() > 25_000       # the cow covers ~12 % of the frame


@pytest.mark.slow
def test_an_ico_sphere_level_5_at_512_is_identical():
    """20,480 faces at 512 x 512, soft: PyTorch3D's naive side takes tens of seconds on two cores."""
    sphere = ico_sphere(5)
    R, T = look_at_view_transform(2.7, 10, 30)
    cams = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=512, blur_radius=1e-5, faces_per_pixel=4)
    ours, ref = (r(sphere) for r in rasterizers(cams, settings))
    assert_same_fragments((ours.pix_to_face, ours.zbuf, ours.bary_coords, ours.dists),
                          (ref.pix_to_face, ref.zbuf, ref.bary_coords, ref.dists), "ico5 512")


# ---------------------------------------------------------------------------------------- gradients


def cosine_and_rel_err(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a, b = a.double().flatten(), b.double().flatten()
    return (torch.dot(a, b) / (a.norm() * b.norm())).item(), ((a - b).norm() / b.norm()).item()


def grads(fn, meshes: Meshes, kw: dict, seed: int) -> torch.Tensor:
    """d(random weighted sum of zbuf, bary and dists over the kept faces) / d verts."""
    verts = meshes.verts_padded().clone().requires_grad_(True)
    m = Meshes(verts=list(verts), faces=list(meshes.faces_padded()))
    p2f, zbuf, bary, dists = fn(m, **kw)
    gen = torch.Generator().manual_seed(seed)
    kept = (p2f >= 0).float()
    loss = (kept * zbuf * torch.randn(zbuf.shape, generator=gen)).sum() \
        + (kept[..., None] * bary * torch.randn(bary.shape, generator=gen)).sum() \
        + (kept * dists * torch.randn(dists.shape, generator=gen)).sum() * 100
    (g,) = torch.autograd.grad(loss, verts)
    return g


GRAD_SETTINGS = [
    dict(image_size=16, blur_radius=0.01, faces_per_pixel=8),
    dict(image_size=(12, 20), blur_radius=0.005, faces_per_pixel=30, perspective_correct=True),
    dict(image_size=16, blur_radius=0.02, faces_per_pixel=10, perspective_correct=True, clip_barycentric_coords=True),
    dict(image_size=16, faces_per_pixel=2, clip_barycentric_coords=True, cull_backfaces=True),
    dict(image_size=16, blur_radius=0.01, faces_per_pixel=5, perspective_correct=True, z_clip_value=0.5),
]


@pytest.mark.parametrize("case", range(len(GRAD_SETTINGS)))
def test_gradients_match_pytorch3ds_backward(case):
    gen = torch.Generator().manual_seed(100 + case)
    sphere = ico_sphere(1)
    verts = sphere.verts_packed() * 0.8 + torch.tensor([0.0, 0.0, 2.0])
    verts = verts + 0.05 * torch.randn(verts.shape, generator=gen)
    meshes = Meshes(verts=[verts, verts[:, [1, 0, 2]] * 0.7], faces=[sphere.faces_packed()] * 2)
    kw = GRAD_SETTINGS[case]
    ours, ref = grads(rasterize_meshes, meshes, kw, case), grads(p3d_rasterize_meshes, meshes, kw, case)
    cos, rel = cosine_and_rel_err(ours, ref)
    assert ref.abs().sum() > 0
    assert cos >= 0.9999 and rel <= 1e-4, (cos, rel)


def test_gradients_of_a_soft_silhouette_render_match():
    """End to end through PyTorch3D's SoftSilhouetteShader: the camera-pose tutorial's loss, at 32 px."""
    from pytorch3d.renderer import BlendParams, MeshRenderer, SoftSilhouetteShader

    sphere = ico_sphere(2)
    blend = BlendParams(sigma=1e-4, gamma=1e-4)
    settings = RasterizationSettings(image_size=32, blur_radius=math.log(1.0 / 1e-4 - 1.0) * blend.sigma,
                                     faces_per_pixel=50)
    out = []
    for backend in ("numba", "pytorch3d"):
        T = torch.tensor([[0.1, -0.05, 2.5]], requires_grad=True)
        cams = FoVPerspectiveCameras(T=T)
        rast = BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend=backend)
        image = MeshRenderer(rast, SoftSilhouetteShader(blend_params=blend))(sphere)
        loss = ((image[..., 3] - 0.5) ** 2).sum()
        loss.backward()
        out.append((loss.detach(), T.grad.clone()))
    assert torch.equal(out[0][0], out[1][0])
    cos, rel = cosine_and_rel_err(out[0][1], out[1][1])
    assert cos >= 0.9999 and rel <= 1e-4, (cos, rel)
