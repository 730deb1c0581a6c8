"""Implicit functions: the NeRF field, its chunked full-image render, training inside a loop, and the analytic
fields rendered without training."""
from __future__ import annotations

import math

import pytest
import torch
from pytorch3d.renderer import (EmissionAbsorptionRaymarcher, FoVPerspectiveCameras, HarmonicEmbedding,
                                ImplicitRenderer, NDCMultinomialRaysampler, look_at_view_transform)

from nodegraph import registry
from nodegraph.errors import NodeError
from nodegraph.graph import Graph
from nodegraph.nodes.implicit import NeuralRadianceField
from test_volumes import call


def small_nerf_graph(image: int = 256, chunk: int = 4096, pts: int = 8) -> Graph:
    g = Graph(name="full_render")
    g.add_node("TurntableCameras", "camera", n_frames=1)
    g.add_node("NDCMultinomialRaysampler", "grid", image_width=image, image_height=image, n_pts_per_ray=pts,
               min_depth=0.1, max_depth=3.0)
    g.add_node("EmissionAbsorptionRaymarcher", "raymarcher")
    g.add_node("NeuralRadianceField", "nerf", n_harmonic_functions=4, n_hidden_neurons=16)
    g.add_node("ImplicitRenderer", "render", chunk_size=chunk)
    for src, dst in (("camera.cameras", "cameras"), ("nerf.function", "function"), ("grid.raysampler", "raysampler"),
                     ("raymarcher.raymarcher", "raymarcher")):
        node, port = src.split(".")
        g.connect(node, port, "render", dst)
    return g


def camera(dist: float = 3.0, elev: float = 0.0, fov: float = 60.0) -> FoVPerspectiveCameras:
    R, T = look_at_view_transform(dist=dist, elev=elev, azim=0.0)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov)


# ------------------------------------------------------------------------------------------ the field


def test_nerf_node_is_the_tutorials_field():
    spec = registry.get("NeuralRadianceField")
    assert spec.learnable and spec.outputs[0].type == "ImplicitFunction"
    g = Graph()
    field = call("NeuralRadianceField", "nerf", graph=g)["function"]
    e, h = 60 * 2 * 3, 256
    want = (e * h + h) + (h * h + h) + ((h + e) * h + h) + (h * 3 + 3) + (h + 1)
    assert sum(p.numel() for p in field.parameters()) == want
    assert float(field.density_layer[0].bias[0].detach()) == -1.5
    assert g.executor.state["nerf"].parameters() == list(field.parameters())  # trained by Optimize
    bundle = NDCMultinomialRaysampler(image_width=6, image_height=5, n_pts_per_ray=7, min_depth=1.0,
                                      max_depth=4.0)(cameras=camera())
    with torch.no_grad():
        dens, colors = field(ray_bundle=bundle)
    assert list(dens.shape) == [1, 5, 6, 7, 1] and list(colors.shape) == [1, 5, 6, 7, 3]
    assert 0 <= float(dens.min()) and float(dens.max()) < 1 and 0 <= float(colors.min()) and float(colors.max()) <= 1
    assert call("NeuralRadianceField", "nerf", graph=g)["function"] is field  # one module per node


def test_harmonic_embedding_node_matches_pytorch3d():
    x = torch.rand(4, 5, 3)
    got = call("HarmonicEmbedding", x=x, n_harmonic_functions=5, omega0=0.5, logspace=True, append_input=True)
    want = HarmonicEmbedding(5, omega_0=0.5, logspace=True, append_input=True)(x)
    assert list(got["embedding"].shape) == [4, 5, 3 * (2 * 5 + 1)] and torch.allclose(got["embedding"], want)


def test_full_image_render_holds_at_most_a_chunk_of_rays_in_the_field():
    g = small_nerf_graph(image=256, chunk=4096)
    field = g.run(device="cpu", targets=["nerf"])["nerf"]["function"]
    rays_per_call: list[int] = []
    hook = field.register_forward_pre_hook(
        lambda module, args, kwargs: rays_per_call.append(kwargs["ray_bundle"].lengths[..., 0].numel()),
        with_kwargs=True)
    try:
        chunked = g.run(device="cpu")["render"]["images"]
        assert max(rays_per_call) <= 4096 and sum(rays_per_call) == 256 * 256 and len(rays_per_call) == 16
        assert list(chunked.shape) == [1, 256, 256, 4]
        rays_per_call.clear()
        g.set_param("render", "chunk_size", 0)
        whole = g.run(device="cpu")["render"]["images"]
        assert rays_per_call == [256 * 256]
    finally:
        hook.remove()
    assert torch.allclose(chunked, whole, atol=1e-5)
    assert not chunked.requires_grad


def test_a_field_render_too_big_for_memory_is_refused_unless_chunked():
    g = Graph()
    field = call("NeuralRadianceField", "nerf", graph=g)["function"]
    rs = call("NDCMultinomialRaysampler", image_width=2048, image_height=2048, n_pts_per_ray=1024)["raysampler"]
    cams = FoVPerspectiveCameras(R=torch.eye(3).expand(64, 3, 3), T=torch.tensor([[0, 0, 3.0]]).expand(64, 3))
    ea = EmissionAbsorptionRaymarcher()
    with pytest.raises(NodeError) as err:
        call("ImplicitRenderer", "render", graph=g, cameras=cams, function=field, raysampler=rs, raymarcher=ea)
    assert err.value.problem.node == "render" and err.value.problem.field == "raysampler"
    assert "needs about" in str(err.value) and "chunk_size" in str(err.value)


def test_nerf_trains_in_a_loop_on_new_monte_carlo_rays_each_iteration(assets, monkeypatch):
    g = Graph(name="nerf_loop", base_dir=assets.parent)
    g.add_node("LoadMesh", "mesh", file="assets/cow_mesh/cow.obj")
    g.add_node("TargetViews", "views", num_views=4, image_size=16, silhouette="hard")
    g.add_node("RandomCameraBatch", "batch", batch_size=2)
    g.add_node("MonteCarloRaysampler", "mc", n_rays_per_image=64, n_pts_per_ray=8)
    g.add_node("EmissionAbsorptionRaymarcher", "raymarcher")
    g.add_node("NeuralRadianceField", "nerf", n_harmonic_functions=4, n_hidden_neurons=16)
    g.add_node("ImplicitRenderer", "render")
    g.add_node("SampleImagesAtRays", "target")
    g.add_node("HuberLoss", "loss")
    g.add_node("Optimize", "optimize", lr=1e-2, iterations=6, preview_every=0)
    for a, b in (("mesh.mesh", "views.mesh"), ("views.cameras", "batch.cameras"), ("views.images", "batch.images"),
                 ("batch.cameras", "render.cameras"), ("nerf.function", "render.function"),
                 ("mc.raysampler", "render.raysampler"), ("raymarcher.raymarcher", "render.raymarcher"),
                 ("batch.images", "target.images"), ("render.ray_bundle", "target.ray_bundle"),
                 ("render.rgb", "loss.input"), ("target.images", "loss.target"), ("loss.loss", "optimize.loss")):
        g.connect(*a.split("."), *b.split("."))
    assert g.validate() == []
    seen: list[torch.Tensor] = []
    fields: list = []
    forward = NeuralRadianceField.forward

    def spy(self, ray_bundle, **kwargs):  # records what the real field is asked, then computes it
        seen.append(ray_bundle.xys.detach().clone())
        if not fields:
            init.extend(p.detach().clone() for p in self.parameters())
        fields.append(self)
        return forward(self, ray_bundle, **kwargs)

    monkeypatch.setattr(NeuralRadianceField, "forward", spy)
    init: list[torch.Tensor] = []
    out = g.run(device="cpu", targets=["optimize"])
    assert g.executor.counts["mc"] == 6 and g.executor.counts["views"] == 1  # rays per iteration, data once
    assert len(seen) == 6 and all(not torch.allclose(a, b) for a, b in zip(seen, seen[1:]))
    assert list(seen[0].shape) == [2, 64, 2]
    trained = g.executor.state["nerf"].parameters()
    assert all(f is fields[0] for f in fields) and trained == list(fields[0].parameters())
    assert any(not torch.allclose(a, b) for a, b in zip(init, trained))
    assert len(out["optimize"]["history"].series["loss"]) == 6


# ------------------------------------------------------------------------------------------ analytic fields


def render_field(type_name: str, cam: FoVPerspectiveCameras, px: int = 64, **params) -> torch.Tensor:
    field = call(type_name, **params)["function"]
    rs = NDCMultinomialRaysampler(image_width=px, image_height=px, n_pts_per_ray=128, min_depth=0.5,
                                  max_depth=5.0)
    return call("ImplicitRenderer", cameras=cam, function=field, raysampler=rs,
                raymarcher=EmissionAbsorptionRaymarcher())["images"]


def test_sphere_field_renders_the_projected_disc_and_matches_pytorch3d():
    cam = camera(dist=3.0, fov=60.0)
    images = render_field("SphereField", cam, radius=0.8, sharpness=200.0, coloring="flat", color=[1.0, 0.5, 0.0])
    ndc_radius = math.tan(math.asin(0.8 / 3.0)) / math.tan(math.radians(30.0))
    want_fraction = math.pi * ndc_radius ** 2 / 4.0
    inside = images[..., 3] > 0.5
    assert float(inside.float().mean()) == pytest.approx(want_fraction, rel=0.05)
    assert torch.allclose(images[0, 32, 32, :3], torch.tensor([1.0, 0.5, 0.0]), atol=0.02)
    assert float(images[0, 0, 0, 3]) < 0.01
    field = call("SphereField", radius=0.8, sharpness=200.0, coloring="flat", color=[1.0, 0.5, 0.0])["function"]
    rs = NDCMultinomialRaysampler(image_width=64, image_height=64, n_pts_per_ray=128, min_depth=0.5, max_depth=5.0)
    want, _ = ImplicitRenderer(rs, EmissionAbsorptionRaymarcher())(cameras=cam, volumetric_function=field)
    assert torch.allclose(images, want, atol=1e-6)


def test_box_and_torus_fields_have_their_shapes():
    cam = camera(dist=3.0, fov=60.0)
    box = render_field("BoxField", cam, size=[1.0, 1.0, 1.0], sharpness=200.0)[0, ..., 3] > 0.5
    half = 0.5 / (3.0 - 0.5) / math.tan(math.radians(30.0))  # the near face projects largest
    assert float(box.float().mean()) == pytest.approx(half ** 2, rel=0.08)
    rows = box.any(dim=1).nonzero()
    assert (rows.max() - rows.min() + 1) / 64 == pytest.approx(half, rel=0.08)
    top = camera(dist=3.0, elev=89.0)
    torus = render_field("TorusField", top, major_radius=0.7, minor_radius=0.25, sharpness=200.0)[0, ..., 3]
    assert float(torus[32, 32]) < 0.05  # looking down the axis: the hole
    ring = math.tan(math.atan(0.7 / 3.0)) / math.tan(math.radians(30.0))
    col = 32 + round(ring * 32)
    assert float(torus[32, min(col, 63)]) > 0.9
    side = render_field("TorusField", cam, major_radius=0.7, minor_radius=0.25, sharpness=200.0)[0, ..., 3]
    assert float(side[32, 32]) > 0.9  # from the side the ring covers the centre


def test_field_colourings_and_bad_params():
    cam = camera()
    normals = render_field("SphereField", cam, px=32, coloring="normals")
    shaded = render_field("SphereField", cam, px=32, coloring="shaded", light_direction=[0.0, 1.0, 0.0])
    assert float(normals[0, 16, 16, 2]) > 0.9  # the normal facing the camera (+z) is blue
    assert float(shaded[0, 6, 16, :3].sum()) > float(shaded[0, 26, 16, :3].sum())  # lit from above
    g = Graph()
    g.add_node("TorusField", "torus", major_radius=0.3, minor_radius=0.5)
    g.add_node("SphereField", "sphere", light_direction=[0.0, 0.0, 0.0])
    problems = {(p.node, p.field) for p in g.validate()}
    assert problems == {("torus", "minor_radius"), ("sphere", "light_direction")}
