"""Render-family nodes on the real cow: graph results equal direct PyTorch3D calls, the example graphs run at CPU
size and write their PNGs, edits rerun only what depends on them, and bad input names the node and field."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.ops import sample_points_from_meshes
from pytorch3d.renderer import (AlphaCompositor, BlendParams, FoVOrthographicCameras, FoVPerspectiveCameras,
                                HardFlatShader, HardPhongShader, Materials, MeshRasterizer, MeshRenderer,
                                NormWeightedCompositor, PointLights, PointsRasterizationSettings, PointsRasterizer,
                                PointsRenderer, RasterizationSettings, SoftGouraudShader, SoftPhongShader,
                                SoftSilhouetteShader, TexturesVertex, look_at_view_transform)
from pytorch3d.structures import Pointclouds

import nodegraph
from nodegraph.registry import default_registry
from nodegraph.errors import GraphError, NodeError
from nodegraph.executor import _node_seed
from nodegraph.session import Session

ROOT = Path(__file__).resolve().parent.parent
COW = ROOT / "graphs" / "assets" / "cow_mesh" / "cow.obj"
EXAMPLES = ["render_textured_cow", "render_cow_batch", "render_coloured_points", "lighting_and_shading"]


def build(nodes: dict, links: list[str], base_dir: Path = ROOT / "graphs", seed: int = 0) -> Session:
    """A graph from ``{id: (type, params)}`` and links written ``"src.port -> dst.port"``."""
    g = nodegraph.new(name="test", base_dir=base_dir, seed=seed)
    for node_id, (type_name, params) in nodes.items():
        g.add_node(type_name, node_id, **params)
    for link in links:
        src, dst = (s.strip() for s in link.split("->"))
        g.connect(*src.split("."), *dst.split("."))
    return g


def cow_graph(size: int = 64, shader: str = "SoftPhongShader", views: dict | None = None,
              light=(0.0, 0.0, -3.0)) -> Session:
    """The tutorial's textured-cow pipeline; ``views`` adds LookAtViewTransform range params and an ExtendMesh."""
    view_params = {"dist": 2.7, "elev": 0.0, "azim": 180.0, **(views or {})}
    nodes = {
        "cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}),
        "view": ("LookAtViewTransform", view_params),
        "camera": ("FoVPerspectiveCameras", {}),
        "light": ("PointLights", {"location": list(light)}),
        "raster": ("RasterizationSettings", {"image_size": size, "blur_radius": 0.0, "faces_per_pixel": 1}),
        "rasterizer": ("MeshRasterizer", {}),
        "shader": (shader, {}),
        "render": ("MeshRenderer", {}),
    }
    links = ["view.R -> camera.R", "view.T -> camera.T", "camera.cameras -> rasterizer.cameras",
             "raster.settings -> rasterizer.settings", "rasterizer.rasterizer -> render.rasterizer",
             "shader.shader -> render.shader"]
    if shader != "SoftSilhouetteShader":
        links += ["camera.cameras -> shader.cameras", "light.lights -> shader.lights"]
    mesh_out = "cow.mesh"
    if shader == "SoftGouraudShader":
        nodes["bake"] = ("TextureToVertexColors", {})
        links.append("cow.mesh -> bake.mesh")
        mesh_out = "bake.mesh"
    if views and views.get("views", 1) > 1:
        nodes["batch"] = ("ExtendMesh", {"n": views["views"]})
        links.append(f"{mesh_out} -> batch.mesh")
        mesh_out = "batch.mesh"
    links.append(f"{mesh_out} -> render.meshes")
    return build(nodes, links)


@pytest.fixture(scope="module")
def cow():
    return load_objs_as_meshes([str(COW)])


# ------------------------------------------------------------------------------ the catalogue


def test_render_nodes_are_registered_with_the_agreed_ports():
    expect = {
        "LoadMesh": ([], ["mesh"]), "LoadPointcloud": ([], ["points"]), "LoadImage": ([], ["image"]),
        "NormalizeMesh": (["mesh"], ["mesh"]), "ExtendMesh": (["mesh"], ["mesh"]),
        "SamplePoints": (["mesh"], ["points", "normals"]), "VertexColors": (["mesh"], ["mesh"]),
        "JoinMeshes": (["meshes"], ["mesh"]), "LookAtViewTransform": ([], ["R", "T"]),
        "FoVPerspectiveCameras": (["R", "T"], ["cameras"]), "FoVOrthographicCameras": (["R", "T"], ["cameras"]),
        "Turntable": ([], ["R", "T"]), "PointLights": ([], ["lights"]), "Materials": ([], ["materials"]),
        "RasterizationSettings": ([], ["settings"]), "BlendParams": ([], ["blend"]),
        "MeshRasterizer": (["cameras", "settings"], ["rasterizer"]),
        "SoftPhongShader": (["cameras", "lights", "materials", "blend"], ["shader"]),
        "SoftSilhouetteShader": (["blend"], ["shader"]),
        "MeshRenderer": (["rasterizer", "shader", "meshes", "cameras", "lights"], ["images"]),
        "PointsRasterizationSettings": ([], ["settings"]),
        "PointsRasterizer": (["cameras", "settings"], ["rasterizer"]),
        "AlphaCompositor": ([], ["compositor"]), "PointsRenderer": (["rasterizer", "compositor", "points", "cameras"],
                                                                    ["images"]),
        "SplitRGBA": (["images"], ["rgb", "alpha"]), "ImageGrid": (["images"], ["image"]),
        "SaveImage": (["images"], []), "SaveMesh": (["mesh"], []), "SaveAnimation": (["images"], []),
    }
    for name, (inputs, outputs) in expect.items():
        spec = default_registry().get(name)
        assert spec is not None, name
        assert [i.name for i in spec.inputs] == inputs, name
        assert [o.name for o in spec.outputs] == outputs, name
    assert default_registry().get("SamplePoints").stochastic
    assert [p.name for p in default_registry().get("LookAtViewTransform").params][:7] == [
        "dist", "elev", "azim", "dist_end", "elev_end", "azim_end", "views"]
    previews = {n for n, s in ((s.name, s) for s in default_registry()) if s.preview}
    assert {"PreviewImage", "PreviewMesh", "PreviewPoints"} <= previews
    assert not previews & {"SaveImage", "SaveMesh", "SaveAnimation", "SavePointcloud"}


# --------------------------------------------------------------- graph == direct PyTorch3D


def direct_cow(cow, size: int, shader_cls=SoftPhongShader, elev=0.0, azim=180.0, mesh=None):
    R, T = look_at_view_transform(2.7, elev, azim)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=size, blur_radius=0.0, faces_per_pixel=1)
    lights = PointLights(location=[[0.0, 0.0, -3.0]])
    shader = (SoftSilhouetteShader() if shader_cls is SoftSilhouetteShader
              else shader_cls(cameras=cameras, lights=lights))
    renderer = MeshRenderer(rasterizer=MeshRasterizer(cameras=cameras, raster_settings=settings), shader=shader)
    return renderer(mesh if mesh is not None else cow)


def test_textured_cow_through_the_graph_equals_direct_pytorch3d(cow):
    out = cow_graph(size=96).run(device="cpu")
    images = out["render"]["images"]
    assert images.shape == (1, 96, 96, 4)
    assert images[..., 3].mean() > 0.03  # the cow is in the picture
    assert (images - direct_cow(cow, 96)).abs().max() < 1e-5


@pytest.mark.parametrize("shader", ["HardPhongShader", "HardFlatShader", "SoftGouraudShader",
                                    "SoftSilhouetteShader"])
def test_every_mesh_shader_equals_direct_pytorch3d(cow, shader):
    from nodegraph.nodes.meshes import TextureToVertexColors  # noqa: F401

    out = cow_graph(size=64, shader=shader).run(device="cpu")
    mesh = out["bake"]["mesh"] if shader == "SoftGouraudShader" else cow
    assert isinstance(mesh.textures, TexturesVertex) or shader != "SoftGouraudShader"
    cls = {"HardPhongShader": HardPhongShader, "HardFlatShader": HardFlatShader,
           "SoftGouraudShader": SoftGouraudShader, "SoftSilhouetteShader": SoftSilhouetteShader}[shader]
    assert (out["render"]["images"] - direct_cow(cow, 64, cls, mesh=mesh)).abs().max() < 1e-5


def test_batched_views_equal_direct_linspace_render(cow):
    g = cow_graph(size=48, views={"elev_end": 180.0, "azim": -180.0, "azim_end": 180.0, "views": 3})
    out = g.run(device="cpu")
    R, T = look_at_view_transform(2.7, torch.linspace(0, 180, 3), torch.linspace(-180, 180, 3))
    assert torch.allclose(out["view"]["R"], R) and torch.allclose(out["view"]["T"], T)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    renderer = MeshRenderer(
        rasterizer=MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(image_size=48)),
        shader=SoftPhongShader(cameras=cameras, lights=PointLights(location=[[0.0, 0.0, -3.0]])))
    direct = renderer(cow.extend(3))
    assert out["render"]["images"].shape == (3, 48, 48, 4)
    assert (out["render"]["images"] - direct).abs().max() < 1e-5


def points_graph(size: int = 64, compositor: str = "AlphaCompositor", background=None) -> Session:
    comp = {} if background is None else {"background": background}
    return build({
        "cow": ("LoadMesh", {}),
        "sample": ("SamplePoints", {"num_samples": 20000, "with_colors": True}),
        "view": ("LookAtViewTransform", {"dist": 20.0, "elev": 10.0, "azim": 0.0}),
        "camera": ("FoVOrthographicCameras", {"znear": 0.01}),
        "raster": ("PointsRasterizationSettings", {"image_size": size, "radius": 0.01, "points_per_pixel": 10}),
        "rasterizer": ("PointsRasterizer", {}),
        "compositor": (compositor, comp),
        "render": ("PointsRenderer", {}),
    }, ["cow.mesh -> sample.mesh", "view.R -> camera.R", "view.T -> camera.T",
        "camera.cameras -> rasterizer.cameras", "raster.settings -> rasterizer.settings",
        "rasterizer.rasterizer -> render.rasterizer", "compositor.compositor -> render.compositor",
        "sample.points -> render.points"], seed=5)


@pytest.mark.parametrize("compositor,background", [("AlphaCompositor", None), ("AlphaCompositor", [0.0, 0.0, 1.0]),
                                                   ("NormWeightedCompositor", [0.0, 0.0, 1.0])])
def test_coloured_points_through_the_graph_equal_direct_pytorch3d(cow, compositor, background):
    g = points_graph(compositor=compositor, background=background)
    out = g.run(device="cpu")
    # the stochastic sampler draws from its own seed: the same call reproduces the same cloud
    torch.manual_seed(_node_seed(g.seed, "sample"))
    points, normals, colors = sample_points_from_meshes(cow, 20000, return_normals=True, return_textures=True)
    assert torch.equal(out["sample"]["points"].points_padded(), points)
    assert torch.equal(out["sample"]["points"].features_padded(), colors)
    R, T = look_at_view_transform(20, 10, 0)
    cameras = FoVOrthographicCameras(R=R, T=T, znear=0.01)
    comp_cls = {"AlphaCompositor": AlphaCompositor, "NormWeightedCompositor": NormWeightedCompositor}[compositor]
    renderer = PointsRenderer(
        rasterizer=PointsRasterizer(cameras=cameras, raster_settings=PointsRasterizationSettings(
            image_size=64, radius=0.01, points_per_pixel=10)),
        compositor=comp_cls(background_color=None if background is None else tuple(background)))
    direct = renderer(Pointclouds(points=points, features=colors))
    images = out["render"]["images"]
    assert images.shape == (1, 64, 64, 3)
    assert (images - direct).abs().max() < 1e-5
    if background is not None:
        assert images[0, 0, 0].tolist() == background  # the corner is background


def test_materials_lights_and_blend_reach_the_shader(cow):
    g = cow_graph(size=48)
    g.add_node("Materials", "material", shininess=10.0, specular_color=[0.8, 0.8, 0.8])
    g.add_node("BlendParams", "blend", background=[0.0, 1.0, 0.0])
    g.connect("material", "materials", "shader", "materials")
    g.connect("blend", "blend", "shader", "blend")
    images = g.run(device="cpu")["render"]["images"]
    R, T = look_at_view_transform(2.7, 0, 180)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    shader = SoftPhongShader(cameras=cameras, lights=PointLights(location=[[0.0, 0.0, -3.0]]),
                             materials=Materials(shininess=10.0, specular_color=[[0.8, 0.8, 0.8]]),
                             blend_params=BlendParams(background_color=(0.0, 1.0, 0.0)))
    direct = MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(image_size=48)),
                          shader)(cow)
    assert (images - direct).abs().max() < 1e-5
    assert images[0, 0, 0, :3].tolist() == [0.0, 1.0, 0.0]


def test_light_behind_the_cow_darkens_it_and_directional_ambient_lights_render():
    front = cow_graph(size=48).run(device="cpu")["render"]["images"]
    behind = cow_graph(size=48, light=(0.0, 0.0, 3.0)).run(device="cpu")["render"]["images"]
    mask = front[..., 3] > 0.5
    assert front[..., :3][mask].mean() > behind[..., :3][mask].mean() + 0.05
    for lights, params in [("DirectionalLights", {"direction": [0.0, 0.0, -1.0]}),
                           ("AmbientLights", {"ambient_color": [0.5, 0.5, 0.5]})]:
        g = cow_graph(size=48)
        g.nodes["light"].type = lights
        g.nodes["light"].params = params
        img = g.run(device="cpu")["render"]["images"]
        assert img[..., :3][mask].mean() > 0.05 and not torch.equal(img, front)


# ------------------------------------------------------------------------------ caching


def test_moving_the_light_reruns_only_light_shader_and_render():
    g = cow_graph(size=32)
    g.run(device="cpu")
    g.executor.counts.clear()
    g.set_param("light", "location", [0.0, 1.0, -3.0])
    g.run(device="cpu")
    assert set(g.executor.counts) == {"light", "shader", "render"}


# ------------------------------------------------------------------------------ example graphs


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_graph_validates_and_runs_at_cpu_size(name, tmp_path, graphs_dir):
    g = nodegraph.load(graphs_dir / f"{name}.json")
    assert g.validate() == []
    assert "--set raster.image_size=" in g.description  # tells CPU users how to shrink it
    saves = [n for n in g.nodes.values() if n.type == "SaveImage"]
    assert saves
    g.set_params({"raster.image_size": 32})
    out = g.run(device="cpu", out_dir=tmp_path)
    for save in saves:
        png = tmp_path / save.params["filename"]
        assert png.is_file(), png
        with Image.open(png) as im:
            assert min(im.size) >= 32
            assert len(set(im.convert("RGB").getdata())) > 2  # not a blank picture
    renders = [out[n]["images"] for n, node in g.nodes.items() if node.type in ("MeshRenderer", "PointsRenderer")]
    assert renders and all(r.shape[1:3] == (32, 32) for r in renders)
    if name == "render_cow_batch":
        assert renders[0].shape[0] == 20


def test_every_graph_file_is_in_canonical_form(graphs_dir):
    """load -> save is identity for every graph we ship (run `python -m nodegraph fmt FILE` to fix one)."""
    files = sorted(graphs_dir.glob("*.json"))
    assert len(files) >= len(EXAMPLES)
    for path in files:
        text = path.read_text()
        assert nodegraph.load(path).dumps() == text, f"{path.name} is not canonical"
        assert json.loads(text)["format"] == ("nodegraph/2" if '"definitions"' in text else "nodegraph/1")


def test_every_example_states_its_time_as_shipped_on_a_2_core_cpu(graphs_dir):
    """Each description says how long the published form takes on a 2-core CPU, in the one phrase
    ``benchmarks/example_times.py`` measures it for, before the CPU-sized override (which tests parse)."""
    stated = re.compile(r"As shipped, on a 2-core CPU \(benchmarks/example_times\.py\): (about |up to )?"
                        r"\d+(\.\d+)? (s|min|h)\b")
    for path in sorted(graphs_dir.glob("*.json")):
        description = nodegraph.load(path).description
        found = stated.search(description)
        assert found, f"{path.name}: no 'As shipped, on a 2-core CPU' time"
        cpu_sized = description.find("CPU-sized run")
        assert cpu_sized < 0 or found.start() < cpu_sized, f"{path.name}: the time must come before the CPU form"


# ------------------------------------------------------------------------------ bad input


def problems_of(g: Session) -> set[tuple[str, str]]:
    return {(p.node, p.field) for p in g.validate()}


@pytest.mark.parametrize("size", [0, 5000, 12.5, "big"])
def test_image_size_out_of_range_names_node_and_field(size):
    g = cow_graph()
    g.set_param("raster", "image_size", size)
    assert ("raster", "image_size") in problems_of(g)
    with pytest.raises(GraphError, match=r"raster\.image_size"):
        g.run(device="cpu")
    p = points_graph()
    p.set_param("raster", "image_size", size)
    assert ("raster", "image_size") in problems_of(p)


def test_missing_file_and_bad_extension_name_node_and_field(tmp_path):
    g = cow_graph()
    g.set_param("cow", "file", "assets/cow_mesh/no_such_cow.obj")
    problems = g.validate()
    assert [(p.node, p.field) for p in problems] == [("cow", "file")] and "not found" in problems[0].message
    g.set_param("cow", "file", "assets/cow_mesh/cow.mtl")
    problems = g.validate()
    assert ("cow", "file") in problems_of(g) and ".obj" in problems[0].message
    g.set_param("cow", "file", "../../etc/passwd.obj")
    assert ("cow", "file") in problems_of(g)
    (tmp_path / "broken.obj").write_text("v 0 0 0\nf 1 2 9\n")
    bad = build({"m": ("LoadMesh", {"file": "broken.obj"})}, [], base_dir=tmp_path)
    with pytest.raises(NodeError, match="vertices it does not have") as exc:
        bad.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("m", "file")
    (tmp_path / "garbage.ply").write_bytes(b"garbage\x00\x01")
    bad.set_param("m", "file", "garbage.ply")
    with pytest.raises(NodeError, match="cannot read") as exc:
        bad.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("m", "file")


def test_runtime_mismatches_name_node_and_field():
    g = cow_graph(size=32, views={"elev_end": 90.0, "views": 3})
    g.nodes.pop("batch")  # forget ExtendMesh: 1 mesh, 3 cameras
    g.graph.links = [l for l in g.links if "batch" not in (l.src, l.dst)]
    g.connect("cow", "mesh", "render", "meshes")
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("render", "meshes")
    assert "ExtendMesh" in str(exc.value)
    one_view = cow_graph(views={"elev_end": 90.0})
    assert ("view", "elev_end") in problems_of(one_view)
    gouraud_on_uv = cow_graph(size=32)
    gouraud_on_uv.nodes["shader"].type = "SoftGouraudShader"
    with pytest.raises(NodeError, match="TextureToVertexColors") as exc:
        gouraud_on_uv.run(device="cpu")
    assert exc.value.problem.field == "meshes"
    no_colours = points_graph()
    no_colours.set_param("sample", "with_colors", False)
    with pytest.raises(NodeError) as exc:
        no_colours.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("render", "points")
    wrong_link = cow_graph()
    wrong_link.connect("cow", "mesh", "shader", "blend")
    assert ("shader", "blend") in problems_of(wrong_link)
