"""The fused CPU Phong shading kernel against PyTorch3D's own ``SoftPhongShader`` / ``HardPhongShader`` on the
same fragments: the same RGBA images to float rounding for every case it takes (textures, lights, batches,
blending), and PyTorch3D's own shader, with its gradients, for every case it does not."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.renderer import (AmbientLights, BlendParams, DirectionalLights, FoVOrthographicCameras,
                                FoVPerspectiveCameras, HardPhongShader, Materials, MeshRenderer, PointLights,
                                RasterizationSettings, SoftPhongShader, TexturesAtlas, TexturesUV, TexturesVertex,
                                look_at_view_transform)
from pytorch3d.structures import Meshes, join_meshes_as_batch
from pytorch3d.utils import ico_sphere

from nodegraph import raster
from nodegraph.raster import BackendHardPhongShader, BackendMeshRasterizer, BackendSoftPhongShader

COW = Path(__file__).resolve().parent.parent / "graphs" / "assets" / "cow_mesh" / "cow.obj"
TOLERANCE = 2e-5        # float32 rounding of a dozen operations on values near 1
PAIRS = [(BackendSoftPhongShader, SoftPhongShader), (BackendHardPhongShader, HardPhongShader)]


def compare(ours_cls, ref_cls, fragments, meshes, **kwargs) -> torch.Tensor:
    """Shade with the kernel and with PyTorch3D's class; assert the kernel ran and agrees; return its image."""
    call = {k: kwargs.pop(k) for k in list(kwargs) if k in ("znear", "zfar")}
    ours = ours_cls(backend="numba", **kwargs)
    with torch.no_grad():
        mine = ours(fragments, meshes, **call)
        ref = ref_cls(**kwargs)(fragments, meshes, **call)
    assert ours.last_backend == "numba", ours.last_reason
    assert mine.shape == ref.shape and mine.dtype == ref.dtype
    worst = (mine - ref).abs().max().item()
    assert worst < TOLERANCE, f"{ours_cls.__name__}: max difference {worst}"
    return mine


def fragments_of(meshes, cameras, **settings):
    with torch.no_grad():
        return BackendMeshRasterizer(cameras, RasterizationSettings(**settings), backend="numba")(meshes)


@pytest.fixture(scope="module")
def cow():
    return load_objs_as_meshes([str(COW)])


@pytest.mark.parametrize("ours_cls,ref_cls", PAIRS)
def test_the_textured_cow_as_the_tutorial_renders_it(cow, ours_cls, ref_cls):
    R, T = look_at_view_transform(2.7, 0, 180)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    fragments = fragments_of(cow, cameras, image_size=256, faces_per_pixel=1)
    image = compare(ours_cls, ref_cls, fragments, cow, cameras=cameras,
                    lights=PointLights(location=[[0.0, 0.0, -3.0]]))
    covered = fragments.pix_to_face[..., 0] >= 0
    assert covered.float().mean() > 0.05
    assert torch.equal(image[..., 3] > 0, covered)             # soft edges: alpha between 0 and 1 there
    assert image[covered][:, :3].std() > 0.05                      # textured and lit, not flat


def vertex_coloured_batch() -> Meshes:
    """Three meshes of different sizes in one batch, each with its own random vertex colours."""
    gen = torch.Generator().manual_seed(3)
    meshes = []
    for level, shift in ((1, (-0.3, 0.0, 0.0)), (2, (0.2, 0.1, 0.5)), (3, (0.0, -0.2, -0.3))):
        sphere = ico_sphere(level).offset_verts(torch.tensor(shift))
        colours = torch.rand(sphere.verts_packed().shape[0], 3, generator=gen)
        meshes.append(Meshes(sphere.verts_list(), sphere.faces_list(), textures=TexturesVertex([colours])))
    return join_meshes_as_batch(meshes)


@pytest.mark.parametrize("ours_cls,ref_cls", PAIRS)
def test_a_heterogeneous_batch_with_per_image_lights_and_cameras(ours_cls, ref_cls):
    meshes = vertex_coloured_batch()
    R, T = look_at_view_transform(torch.tensor([2.5, 3.0, 2.2]), torch.tensor([10.0, -20.0, 30.0]),
                                  torch.tensor([0.0, 60.0, 150.0]))
    cameras = FoVPerspectiveCameras(R=R, T=T, znear=torch.tensor([0.5, 1.0, 0.8]), zfar=torch.tensor([10., 20., 5.]))
    fragments = fragments_of(meshes, cameras, image_size=(40, 56), blur_radius=1e-4, faces_per_pixel=6,
                             perspective_correct=True)
    lights = PointLights(location=[[0.0, 2.0, -3.0], [1.0, 1.0, 2.0], [-2.0, 0.5, 0.0]],
                         diffuse_color=[[0.6, 0.5, 0.4]], specular_color=[[0.3, 0.3, 0.2]])
    materials = Materials(shininess=12.0, specular_color=[[1.0, 0.5, 0.2]], ambient_color=[[0.3, 0.4, 0.5]])
    blend = BlendParams(sigma=1e-4, gamma=1e-2, background_color=(0.1, 0.2, 0.9))
    image = compare(ours_cls, ref_cls, fragments, meshes, cameras=cameras, lights=lights, materials=materials,
                    blend_params=blend)
    assert image.shape == (3, 40, 56, 4)
    background = fragments.pix_to_face[..., 0] < 0
    assert torch.allclose(image[background][:, :3], torch.tensor([0.1, 0.2, 0.9]))


@pytest.mark.parametrize("lights", [DirectionalLights(direction=[[0.3, -1.0, 0.5]]),
                                    AmbientLights(ambient_color=[[0.7, 0.6, 0.9]])],
                         ids=["directional", "ambient"])
@pytest.mark.parametrize("ours_cls,ref_cls", PAIRS)
def test_directional_and_ambient_lights(lights, ours_cls, ref_cls):
    meshes = vertex_coloured_batch()
    R, T = look_at_view_transform(2.5, 20.0, 40.0)
    cameras = FoVOrthographicCameras(R=R, T=T)
    fragments = fragments_of(meshes, cameras, image_size=48, blur_radius=2e-4, faces_per_pixel=4)
    compare(ours_cls, ref_cls, fragments, meshes, cameras=cameras, lights=lights, znear=0.1, zfar=50.0)


def uv_sphere(**texture_options) -> Meshes:
    """An ico-sphere with uvs reaching outside [0, 1] and a 13 x 17 checker-and-gradient map."""
    sphere = ico_sphere(2)
    verts = sphere.verts_packed()
    uvs = torch.stack([verts[:, 0] * 0.7 + 0.5, verts[:, 1] * 0.7 + 0.5], dim=1) * 1.2 - 0.1
    ys, xs = torch.meshgrid(torch.arange(13), torch.arange(17), indexing="ij")
    texture = torch.stack([(xs + ys) % 2 * 0.8 + 0.1, xs / 16.0, ys / 12.0], dim=-1).float()
    textures = TexturesUV(maps=texture[None], faces_uvs=[sphere.faces_packed()], verts_uvs=[uvs], **texture_options)
    return Meshes([verts], [sphere.faces_packed()], textures=textures)


@pytest.mark.parametrize("options", [{}, {"padding_mode": "zeros"}, {"sampling_mode": "nearest"},
                                     {"align_corners": False}, {"align_corners": False, "padding_mode": "zeros"}],
                         ids=["border", "zeros", "nearest", "half-texel", "half-texel-zeros"])
def test_uv_textures_sample_as_grid_sample_does(options):
    meshes = uv_sphere(**options)
    cameras = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 2.5]]))
    fragments = fragments_of(meshes, cameras, image_size=64, faces_per_pixel=1)
    for ours_cls, ref_cls in PAIRS:
        compare(ours_cls, ref_cls, fragments, meshes, cameras=cameras, lights=PointLights(location=[[0., 0., 3.]]))


def test_lights_and_cameras_given_at_render_time_are_used():
    """``MeshRenderer(...)(meshes, cameras=..., lights=...)`` passes them to the shader, as PyTorch3D's does."""
    meshes = vertex_coloured_batch()[0]
    cameras = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
    lights = PointLights(location=[[2.0, 2.0, 2.0]])
    rasterizer = BackendMeshRasterizer(cameras, RasterizationSettings(image_size=32), backend="numba")
    shader = BackendSoftPhongShader(backend="numba")
    with torch.no_grad():
        mine = MeshRenderer(rasterizer, shader)(meshes, cameras=cameras, lights=lights)
        ref = MeshRenderer(rasterizer, SoftPhongShader())(meshes, cameras=cameras, lights=lights)
        unlit = MeshRenderer(rasterizer, shader)(meshes, cameras=cameras)
    assert shader.last_backend == "numba"
    assert (mine - ref).abs().max() < TOLERANCE
    assert (mine - unlit).abs().max() > 0.05


def test_a_frame_that_needs_gradients_is_shaded_by_pytorch3d_with_its_backward():
    sphere = vertex_coloured_batch()[1]
    verts = sphere.verts_packed().clone().requires_grad_(True)
    meshes = Meshes([verts], sphere.faces_list(), textures=sphere.textures)
    cameras = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
    settings = RasterizationSettings(image_size=32, blur_radius=1e-4, faces_per_pixel=3)
    shader = BackendSoftPhongShader(cameras=cameras, backend="auto")
    images = MeshRenderer(BackendMeshRasterizer(cameras, settings), shader)(meshes)
    assert shader.last_backend == "pytorch3d" and "gradients" in shader.last_reason
    images[..., :3].sum().backward()
    assert verts.grad is not None and verts.grad.abs().sum() > 0
    with torch.no_grad():                     # the same frame under no_grad: the kernel takes it
        MeshRenderer(BackendMeshRasterizer(cameras, settings), shader)(meshes)
    assert shader.last_backend == "numba"


def test_what_the_kernel_does_not_cover_falls_back_and_says_why():
    sphere = ico_sphere(1)
    atlas = TexturesAtlas(atlas=[torch.rand(sphere.faces_packed().shape[0], 2, 2, 3)])
    meshes = Meshes(sphere.verts_list(), sphere.faces_list(), textures=atlas)
    cameras = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
    fragments = fragments_of(meshes, cameras, image_size=16)
    shader = BackendHardPhongShader(cameras=cameras, backend="numba")
    raster.reset()
    with torch.no_grad():
        mine = shader(fragments, meshes)
        ref = HardPhongShader(cameras=cameras)(fragments, meshes)
    assert shader.last_backend == "pytorch3d" and "TexturesAtlas" in shader.last_reason
    assert torch.equal(mine, ref)
    assert raster.ran()["shading"] == {"pytorch3d": 1}
    # PyTorch3D broadcasts (N, 3) material colours against the K axis, not the batch: left to PyTorch3D
    per_image = Materials(specular_color=[[1.0, 0.5, 0.2], [0.2, 1.0, 0.5]])
    two = vertex_coloured_batch()[:2]
    shader = BackendSoftPhongShader(cameras=cameras, materials=per_image, backend="numba")
    with torch.no_grad(), pytest.raises(RuntimeError):
        shader(fragments_of(two, cameras, image_size=16, faces_per_pixel=4), two)
    assert shader.last_backend == "pytorch3d" and "materials" in shader.last_reason
    forced = BackendHardPhongShader(cameras=cameras, backend="pytorch3d")
    with torch.no_grad():
        forced(fragments, vertex_coloured_batch()[0])
    assert forced.last_backend == "pytorch3d" and forced.last_reason is None
    with pytest.raises(ValueError, match="backend"):
        BackendSoftPhongShader(backend="warp")
