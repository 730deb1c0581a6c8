"""Ray sampling, volumes, raymarching and the data nodes: values match PyTorch3D called directly, shapes match
the book, bad input fails before allocating with an error that names the node and the field."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.ops import add_pointclouds_to_volumes
from pytorch3d.renderer import (AbsorptionOnlyRaymarcher, EmissionAbsorptionRaymarcher, FoVPerspectiveCameras,
                                MonteCarloRaysampler, NDCMultinomialRaysampler, VolumeRenderer, VolumeSampler,
                                look_at_view_transform)
from pytorch3d.structures import Pointclouds, Volumes

import nodegraph
from nodegraph.registry import default_registry
from nodegraph.context import RunContext
from nodegraph.errors import GraphError, NodeError
from nodegraph.session import Session


def call(type_name: str, node_id: str = "n", graph: Session | None = None, iteration: int | None = None, **kwargs):
    """Run one node function with its default params and a real executor's context (CPU)."""
    spec = default_registry().get(type_name)
    graph = graph or nodegraph.new()
    graph.executor.device = torch.device("cpu")
    unconnected = {i.name: [] if i.multiple else None for i in spec.inputs}
    args = unconnected | spec.defaults() | kwargs
    return spec.normalise_result(spec.fn(RunContext(graph.executor, node_id, iteration), **args))


def cameras(n: int = 3, dist: float = 2.7) -> FoVPerspectiveCameras:
    R, T = look_at_view_transform(dist=dist, elev=torch.zeros(n), azim=torch.linspace(0, 360, n + 1)[:-1])
    return FoVPerspectiveCameras(R=R, T=T)


def random_volume(batch: int = 1, size: int = 12, seed: int = 0) -> Volumes:
    gen = torch.Generator().manual_seed(seed)
    return Volumes(densities=torch.rand(batch, 1, size, size, size, generator=gen),
                   features=torch.rand(batch, 3, size, size, size, generator=gen), voxel_size=2.0 / size)


# ------------------------------------------------------------------------------------------ ray sampling


def test_volume_rendering_steps_graph_shows_the_books_shapes(graphs_dir):
    import nodegraph

    g = nodegraph.load(graphs_dir / "volume_rendering_steps.json")
    previews = []
    g.executor.bus.subscribe(lambda e: previews.append(e) if e["type"] == "preview" else None)
    out = g.run(device="cpu")
    bundle = out["rays"]["ray_bundle"]
    assert list(bundle.origins.shape) == [10, 64, 64, 3]
    assert list(bundle.lengths.shape) == [10, 64, 64, 50]
    assert list(out["ray_points"]["points"].shape) == [10, 64, 64, 50, 3]
    assert list(out["sampler"]["densities"].shape) == [10, 64, 64, 50, 1]
    assert list(out["sampler"]["features"].shape) == [10, 64, 64, 50, 3]
    assert list(out["image_features"]["images"].shape) == [10, 64, 64, 4]
    assert float(out["image_features"]["images"].abs().max()) == 0.0  # a volume of zeros renders nothing
    rays = [p for p in previews if p["node"] == "show_rays"]
    assert rays and rays[0]["kind"] == "points" and rays[0]["points"] == 400 * 25


def test_ndc_raysampler_matches_pytorch3d_and_answers_to_its_old_name():
    spec = default_registry().get("NDCGridRaysampler")
    assert spec is not None and spec.name == "NDCMultinomialRaysampler"
    cams = cameras()
    rs = call("NDCGridRaysampler", image_width=20, image_height=16, n_pts_per_ray=7, min_depth=0.5,
              max_depth=2.0)["raysampler"]
    got = call("SampleRays", raysampler=rs, cameras=cams)["ray_bundle"]
    want = NDCMultinomialRaysampler(image_width=20, image_height=16, n_pts_per_ray=7, min_depth=0.5,
                                    max_depth=2.0)(cameras=cams)
    for name in ("origins", "directions", "lengths", "xys"):
        assert torch.allclose(getattr(got, name), getattr(want, name)), name
    assert list(got.lengths.shape) == [3, 16, 20, 7]
    g = nodegraph.new()  # a graph written with the old name loads, validates and runs
    g.add_node("NDCGridRaysampler", "rs", image_width=8, image_height=8, n_pts_per_ray=4)
    g.add_node("TurntableCameras", "cams", n_frames=2)
    g.add_node("SampleRays", "rays")
    g.connect("rs", "raysampler", "rays", "raysampler")
    g.connect("cams", "cameras", "rays", "cameras")
    assert g.validate() == []
    assert list(g.run(device="cpu")["rays"]["ray_bundle"].lengths.shape) == [2, 8, 8, 4]


def test_raysampler_depth_and_point_count_are_checked_before_running():
    g = nodegraph.new()
    g.add_node("NDCMultinomialRaysampler", "grid", min_depth=2.0, max_depth=1.0)
    g.add_node("MonteCarloRaysampler", "mc", n_pts_per_ray=0, min_depth=1.0, max_depth=1.0)
    problems = {(p.node, p.field): p.message for p in g.validate()}
    assert "min_depth" in problems[("grid", "max_depth")]
    assert ">= 1" in problems[("mc", "n_pts_per_ray")]
    with pytest.raises(GraphError):
        g.run(device="cpu")


def test_monte_carlo_raysampler_is_stochastic_and_bounded():
    assert default_registry().get("MonteCarloRaysampler").stochastic
    rs = call("MonteCarloRaysampler", n_rays_per_image=100, n_pts_per_ray=5, extent=0.5)["raysampler"]
    assert isinstance(rs, MonteCarloRaysampler)
    cams = cameras(2)
    a, b = rs(cameras=cams), rs(cameras=cams)
    assert list(a.lengths.shape) == [2, 100, 5] and list(a.xys.shape) == [2, 100, 2]
    assert not torch.allclose(a.xys, b.xys)
    assert float(a.xys.abs().max()) <= 0.5


def test_ray_count_beyond_device_memory_is_refused_with_the_figure():
    rs = call("NDCMultinomialRaysampler", image_width=1024, image_height=1024, n_pts_per_ray=4096)["raysampler"]
    with pytest.raises(NodeError) as err:
        call("SampleRays", "rays", raysampler=rs, cameras=cameras(2048))
    assert err.value.problem.node == "rays" and err.value.problem.field == "raysampler"
    assert "needs about" in str(err.value) and "TiB" in str(err.value) and "available" in str(err.value)


# ------------------------------------------------------------------------------------------ volumes


def test_volumes_node_builds_a_batch_of_different_sizes():
    vols = call("Volumes", resolution=[8, 12], density=0.25, feature_channels=2, feature_value=0.5,
                voxel_size=0.2, center=[0.1, 0.0, 0.0])["volumes"]
    assert len(vols) == 2
    assert vols.get_grid_sizes().tolist() == [[8, 8, 8], [12, 12, 12]]
    assert [list(d.shape) for d in vols.densities_list()] == [[1, 8, 8, 8], [1, 12, 12, 12]]
    assert float(vols.densities_list()[0].mean()) == pytest.approx(0.25)
    assert list(vols.features_list()[1].shape) == [2, 12, 12, 12]
    centre = vols.local_to_world_coords(torch.zeros(2, 1, 3))
    assert torch.allclose(centre, torch.tensor([0.1, 0.0, 0.0]).expand(2, 1, 3))


def test_volumes_node_from_tensors_and_mismatched_features():
    dens = [torch.rand(1, 6, 6, 6), torch.rand(9, 9, 9)]
    vols = call("Volumes", densities=dens, features=[torch.rand(3, 6, 6, 6), torch.rand(3, 9, 9, 9)])["volumes"]
    assert vols.get_grid_sizes().tolist() == [[6, 6, 6], [9, 9, 9]]
    assert torch.equal(vols.densities_list()[0], dens[0])
    with pytest.raises(NodeError) as err:
        call("Volumes", "vol", densities=[torch.rand(1, 1, 6, 6, 6)], features=[torch.rand(1, 3, 6, 6, 5)])
    assert err.value.problem.node == "vol" and err.value.problem.field == "features"
    assert "6x6x5" in str(err.value) and "6x6x6" in str(err.value)


def test_voxel_grids_too_big_for_the_device_are_refused_before_allocating():
    with pytest.raises(NodeError) as err:
        call("VoxelGrid", "grid", resolution=2048, channels=64)
    assert err.value.problem.field == "resolution" and "needs about" in str(err.value) and "TiB" in str(err.value)
    with pytest.raises(NodeError) as err:
        call("Volumes", "vol", resolution=[2048], batch=4096)
    assert err.value.problem.field == "resolution" and "available" in str(err.value)


def test_voxel_grid_is_the_tutorials_sigmoid_parametrisation():
    g = nodegraph.new()
    vols = call("VoxelGrid", "grid", graph=g, resolution=8, extent=3.0, init_density=-4.0, init_color=0.0)["volumes"]
    assert default_registry().get("VoxelGrid").learnable
    assert torch.allclose(vols.densities(), torch.sigmoid(torch.tensor(-4.0)).expand(1, 1, 8, 8, 8))
    assert torch.allclose(vols.features(), torch.full((1, 3, 8, 8, 8), 0.5))
    params = g.executor.state["grid"].parameters()
    assert sorted(p.shape[0] for p in params) == [1, 3] and all(p.requires_grad for p in params)
    # voxel size extent / resolution; local +1 is the last voxel's centre, 3.5 voxels from the middle
    corner = vols.local_to_world_coords(torch.ones(1, 1, 3))
    assert float(corner[0, 0, 0]) == pytest.approx(3.0 / 8 * 7 / 2)
    vols.densities().sum().backward()
    assert params[0].grad is not None


def test_volume_sampler_matches_pytorch3d_and_shares_one_volume_across_cameras():
    cams = cameras(3)
    bundle = NDCMultinomialRaysampler(image_width=10, image_height=10, n_pts_per_ray=20, min_depth=1.5,
                                      max_depth=4.0)(cameras=cams)
    vol = random_volume(1)
    for mode in ("bilinear", "nearest"):
        got = call("VolumeSampler", volumes=vol, ray_bundle=bundle, sample_mode=mode)
        three = Volumes(densities=vol.densities().expand(3, -1, -1, -1, -1),
                        features=vol.features().expand(3, -1, -1, -1, -1), voxel_size=2.0 / 12)
        dens, feats = VolumeSampler(three, sample_mode=mode)(bundle)
        assert torch.allclose(got["densities"], dens) and torch.allclose(got["features"], feats)
        assert float(dens.max()) > 0  # the rays pass through the volume
    nearest = call("VolumeSampler", volumes=vol, ray_bundle=bundle, sample_mode="nearest")["densities"]
    assert not torch.allclose(nearest, call("VolumeSampler", volumes=vol, ray_bundle=bundle)["densities"])
    with pytest.raises(NodeError) as err:
        call("VolumeSampler", "vs", volumes=random_volume(2), ray_bundle=bundle)
    assert err.value.problem.field == "volumes" and "2 volumes" in str(err.value)


def test_add_pointclouds_to_volumes_matches_pytorch3d(assets):
    gen = torch.Generator().manual_seed(0)
    pts = Pointclouds(points=torch.rand(1, 500, 3, generator=gen) * 1.6 - 0.8,
                      features=torch.rand(1, 500, 3, generator=gen))
    init = Volumes(densities=torch.zeros(1, 1, 16, 16, 16), features=torch.zeros(1, 3, 16, 16, 16),
                   voxel_size=0.125)
    for mode in ("trilinear", "nearest"):
        raw = call("AddPointcloudsToVolumes", points=pts, volumes=init, mode=mode, to_opacity=False)["volumes"]
        want = add_pointclouds_to_volumes(pointclouds=pts, initial_volumes=init.clone(), mode=mode)
        assert torch.allclose(raw.densities(), want.densities()) and torch.allclose(raw.features(), want.features())
        opaque = call("AddPointcloudsToVolumes", points=pts, volumes=init, mode=mode, density_scale=2.0)["volumes"]
        assert torch.allclose(opaque.densities(), 1 - torch.exp(-2.0 * want.densities()))
    assert float(init.densities().abs().max()) == 0.0  # the input is not modified
    bare = Pointclouds(points=pts.points_padded())
    with pytest.raises(NodeError) as err:
        call("AddPointcloudsToVolumes", "splat", points=bare, volumes=init)
    assert err.value.problem.field == "points" and "features" in str(err.value)


def test_volume_slices_cut_the_grid_along_each_axis():
    dens = torch.zeros(1, 1, 4, 6, 8)  # (D=z, H=y, W=x)
    dens[0, 0, :, 5, :] = 1.0  # the top row (largest y)
    vols = Volumes(densities=dens, features=torch.rand(1, 3, 4, 6, 8))
    z = call("VolumeSlices", volumes=vols, axis="z", count=3, show="densities")["images"]
    assert list(z.shape) == [3, 6, 8, 1]
    assert float(z[:, 0].min()) == 1.0 and float(z[:, 1:].max()) == 0.0  # +y is up: the top image row
    assert list(call("VolumeSlices", volumes=vols, axis="x", count=20)["images"].shape) == [8, 6, 4, 3]
    assert list(call("VolumeSlices", volumes=vols, axis="y", count=2, show="premultiplied")["images"].shape) == \
        [2, 4, 8, 3]


# ------------------------------------------------------------------------------------------ raymarching


def test_volume_renderer_matches_pytorch3d_and_raymarchers_agree_on_opacity():
    cams = cameras(3)
    vol = random_volume(1)
    rs = NDCMultinomialRaysampler(image_width=12, image_height=10, n_pts_per_ray=16, min_depth=1.5, max_depth=4.0)
    ea, ao = EmissionAbsorptionRaymarcher(), AbsorptionOnlyRaymarcher()
    got = call("VolumeRenderer", cameras=cams, volumes=vol, raysampler=rs, raymarcher=ea)
    three = Volumes(densities=vol.densities().expand(3, -1, -1, -1, -1),
                    features=vol.features().expand(3, -1, -1, -1, -1), voxel_size=2.0 / 12)
    want, _ = VolumeRenderer(raysampler=rs, raymarcher=ea)(cameras=cams, volumes=three)
    assert list(got["images"].shape) == [3, 10, 12, 4] and torch.allclose(got["images"], want, atol=1e-6)
    assert torch.equal(got["rgb"], got["images"][..., :3]) and torch.equal(got["silhouettes"], got["images"][..., 3:])
    assert not got["images"].requires_grad  # outside a training loop renders carry no graph
    chunked = call("VolumeRenderer", cameras=cams, volumes=vol, raysampler=rs, raymarcher=ea, chunk_size=50)
    assert torch.allclose(chunked["images"], want, atol=1e-6)
    opacity = call("VolumeRenderer", cameras=cams, volumes=vol, raysampler=rs, raymarcher=ao)["images"]
    assert list(opacity.shape) == [3, 10, 12, 1] and torch.allclose(opacity, want[..., 3:], atol=1e-6)


def test_a_batch_of_volumes_of_different_sizes_renders_each_at_its_own_size():
    ragged = call("Volumes", resolution=[8, 12], density=0.5, feature_value=1.0, voxel_size=0.1)["volumes"]
    rs = NDCMultinomialRaysampler(image_width=16, image_height=16, n_pts_per_ray=32, min_depth=1.0, max_depth=4.0)
    cams = cameras(2)
    both = call("VolumeRenderer", cameras=cams, volumes=ragged, raysampler=rs,
                raymarcher=EmissionAbsorptionRaymarcher())["images"]
    for i, side in enumerate((8, 12)):
        alone = call("Volumes", resolution=[side], density=0.5, feature_value=1.0, voxel_size=0.1)["volumes"]
        want = call("VolumeRenderer", cameras=cams[[i]], volumes=alone, raysampler=rs,
                    raymarcher=EmissionAbsorptionRaymarcher())["images"]
        assert torch.allclose(both[i:i + 1], want, atol=1e-6)
    assert float(both[0, ..., 3].sum()) < float(both[1, ..., 3].sum())  # the smaller grid covers less


def test_raymarch_node_applies_either_raymarcher_and_checks_its_inputs():
    gen = torch.Generator().manual_seed(0)
    dens, feats = torch.rand(2, 4, 5, 7, 1, generator=gen), torch.rand(2, 4, 5, 7, 3, generator=gen)
    ea = call("EmissionAbsorptionRaymarcher", surface_thickness=1)["raymarcher"]
    got = call("Raymarch", raymarcher=ea, densities=dens, features=feats)["images"]
    assert list(got.shape) == [2, 4, 5, 4]
    assert torch.allclose(got, EmissionAbsorptionRaymarcher()(rays_densities=dens, rays_features=feats))
    ao = call("AbsorptionOnlyRaymarcher")["raymarcher"]
    assert torch.allclose(call("Raymarch", raymarcher=ao, densities=dens, features=None)["images"], got[..., 3:])
    rays = call("Raymarch", raymarcher=ea, densities=dens[:, 0], features=feats[:, 0])["images"]  # (B, n) rays
    assert list(rays.shape) == [2, 5, 1, 4] and torch.allclose(rays[:, :, 0], got[:, 0])
    with pytest.raises(NodeError) as err:
        call("Raymarch", "march", raymarcher=ea, densities=dens, features=feats[:, :3])
    assert err.value.problem.field == "features"


# ------------------------------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def cow():
    return load_objs_as_meshes([str(Path(__file__).resolve().parent.parent / "graphs/assets/cow_mesh/cow.obj")])


def test_target_views_render_the_tutorials_ring_of_cameras(cow):
    out = call("TargetViews", mesh=cow, num_views=4, image_size=24, silhouette="hard")
    images, sils, cams = out["images"], out["silhouettes"], out["cameras"]
    assert list(images.shape) == [4, 24, 24, 3] and list(sils.shape) == [4, 24, 24, 1]
    assert set(sils.unique().tolist()) == {0.0, 1.0}
    assert float(images[sils[..., 0] == 0].abs().max()) < 1e-3  # black background
    assert float(images[sils[..., 0] == 1].mean()) > 0.1
    centres = cams.get_camera_center()
    assert torch.allclose(centres.norm(dim=1), torch.full((4,), 2.7), atol=1e-4)
    assert torch.allclose(centres[:, 1], torch.zeros(4), atol=1e-4)  # elevation 0
    soft = call("TargetViews", mesh=cow, num_views=4, image_size=24, silhouette="soft")["silhouettes"]
    inter, union = (soft.bool() & sils.bool()).sum(), (soft.bool() | sils.bool()).sum()
    assert float(inter / union) > 0.85  # the tutorial's blurred silhouettes are slightly larger


def test_target_views_refuse_a_mesh_that_cannot_be_normalized():
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    point = Meshes(verts=[torch.zeros(3, 3)], faces=[torch.tensor([[0, 1, 2]])],
                   textures=TexturesVertex([torch.ones(3, 3)]))
    with pytest.raises(NodeError) as err:
        call("TargetViews", "views", mesh=point, num_views=2, image_size=8, silhouette="hard")
    assert err.value.problem.field == "mesh" and "normalized" in str(err.value)


def test_random_camera_batch_picks_matching_views():
    cams = cameras(6)
    images = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 2, 2, 3)
    out = call("RandomCameraBatch", cameras=cams, images=images, silhouettes=images[..., :1], batch_size=4)
    idx = out["indices"]
    assert len(set(idx.tolist())) == 4
    assert torch.equal(out["images"][:, 0, 0, 0], idx.float())
    assert torch.allclose(out["cameras"].R, cams.R[idx]) and torch.allclose(out["cameras"].T, cams.T[idx])
    assert default_registry().get("RandomCameraBatch").stochastic
    with pytest.raises(NodeError) as err:
        call("RandomCameraBatch", "batch", cameras=cams, images=images[:5], silhouettes=None)
    assert err.value.problem.field == "images"


def test_sample_images_at_rays_follows_pytorch3d_screen_convention():
    cams = cameras(2)
    image = torch.zeros(2, 16, 16, 1)
    image[:, :, :8] = 1.0  # left half of the image is white
    bundle = MonteCarloRaysampler(min_x=-1, max_x=1, min_y=-1, max_y=1, n_rays_per_image=300, n_pts_per_ray=2,
                                  min_depth=1, max_depth=2)(cameras=cams)
    got = call("SampleImagesAtRays", images=image, ray_bundle=bundle)["images"]
    assert list(got.shape) == [2, 300, 1, 1]
    x = bundle.xys[..., 0]  # PyTorch3D NDC: +x points left
    assert float(got[..., 0, 0][x > 0.2].min()) > 0.999 and float(got[..., 0, 0][x < -0.2].max()) < 1e-6
    grid = NDCMultinomialRaysampler(image_width=16, image_height=16, n_pts_per_ray=2, min_depth=1,
                                    max_depth=2)(cameras=cams)
    assert list(call("SampleImagesAtRays", images=image, ray_bundle=grid)["images"].shape) == [2, 16, 16, 1]


def test_turntable_cameras_circle_the_origin_at_their_elevation():
    cams = call("TurntableCameras", n_frames=8, dist=2.5, elevation=30.0)["cameras"]
    centres = cams.get_camera_center()
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.5), atol=1e-4)
    assert torch.allclose(centres[:, 1], torch.full((8,), 2.5 * math.sin(math.radians(30))), atol=1e-4)
    azim = torch.atan2(centres[:, 0], centres[:, 2])
    steps = (azim.diff() % (2 * math.pi)).abs()
    assert torch.allclose(steps, torch.full((7,), 2 * math.pi / 8), atol=1e-4)
    # every camera looks at the origin: it projects to the image centre
    centre_px = cams.transform_points(torch.zeros(8, 1, 3))[:, 0, :2]
    assert float(centre_px.abs().max()) < 1e-4


def test_psnr_and_iou_metrics():
    target = torch.zeros(2, 4, 4, 3)
    images = torch.full((2, 4, 4, 3), 0.1)
    out = call("PSNR", images=images, target=target)
    assert out["psnr"] == pytest.approx(20.0, abs=1e-4) and list(out["per_image"].shape) == [2]
    sil = torch.zeros(1, 4, 4, 1)
    sil[:, :2] = 1
    other = torch.zeros(1, 4, 4, 1)
    other[:, 1:3] = 1
    assert call("SilhouetteIoU", images=sil, target=other)["iou"] == pytest.approx(1 / 3)
    with pytest.raises(NodeError):
        call("PSNR", images=images, target=target[:, :2])
