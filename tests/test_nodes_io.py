"""Loading, primitives, mesh operations, images, saving, previews and transforms, each on real files and data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from pytorch3d.renderer import TexturesUV, TexturesVertex, look_at_view_transform
from pytorch3d.transforms import so3_exp_map

from nodegraph.errors import NodeError
from test_nodes_render import build

CUBE_VERTS = 8


def run1(nodes: dict, links: list[str] = (), base_dir=None, **kw) -> dict:
    kwargs = {"base_dir": base_dir} if base_dir is not None else {}
    return build(nodes, list(links), **kwargs).run(device="cpu", **kw)


# ------------------------------------------------------------------------------------ loading


def test_load_mesh_obj_with_texture_and_ply():
    out = run1({"cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}),
                "cube": ("LoadMesh", {"file": "assets/cube.ply"}),
                "teapot": ("LoadMesh", {"file": "assets/teapot.obj"})})
    cow = out["cow"]["mesh"]
    assert cow.verts_packed().shape == (2930, 3) and cow.faces_packed().shape == (5856, 3)
    assert isinstance(cow.textures, TexturesUV) and cow.textures.maps_padded().shape[-1] == 3
    assert out["cube"]["mesh"].verts_packed().shape == (CUBE_VERTS, 3)
    assert out["cube"]["mesh"].faces_packed().shape == (12, 3)
    assert out["teapot"]["mesh"].faces_packed().shape[0] > 1000


@pytest.mark.parametrize("ext", ["glb", "stl", "off"])
def test_load_mesh_through_trimesh(tmp_path, ext):
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    box.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(box.vertices), 1)).astype(np.uint8)
    box.export(str(tmp_path / f"box.{ext}"))
    mesh = run1({"m": ("LoadMesh", {"file": f"box.{ext}"})}, base_dir=tmp_path)["m"]["mesh"]
    assert mesh.faces_packed().shape == (12, 3)
    extent = mesh.verts_packed().max(0).values - mesh.verts_packed().min(0).values
    assert torch.allclose(extent, torch.tensor([1.0, 2.0, 3.0]), atol=1e-5)
    if ext == "glb":
        assert isinstance(mesh.textures, TexturesVertex)
        assert torch.allclose(mesh.textures.verts_features_packed()[0], torch.tensor([1.0, 0.0, 0.0]))


def test_load_pointcloud_ply_with_and_without_colour_and_npz(tmp_path, assets):
    out = run1({"plain": ("LoadPointcloud", {"file": "assets/pedestrian.ply"}),
                "colour": ("LoadPointcloud", {"file": "assets/parallel_plane_color.ply"})})
    plain, colour = out["plain"]["points"], out["colour"]["points"]
    assert plain.points_packed().shape == (239, 3) and plain.features_packed() is None
    feats = colour.features_packed()
    assert feats.shape[1] == 3 and 0.0 <= feats.min() and feats.max() <= 1.0 and feats.max() > 0
    verts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.savez(tmp_path / "cloud.npz", verts=verts, rgb=np.full((50, 3), 255, np.uint8))
    np.savez(tmp_path / "bare.npz", verts=verts)
    np.savez(tmp_path / "wrong.npz", points=verts)
    out = run1({"a": ("LoadPointcloud", {"file": "cloud.npz"}), "b": ("LoadPointcloud", {"file": "bare.npz"})},
               base_dir=tmp_path)
    assert torch.allclose(out["a"]["points"].points_packed(), torch.from_numpy(verts))
    assert torch.equal(out["a"]["points"].features_packed(), torch.ones(50, 3))
    assert out["b"]["points"].features_packed() is None
    with pytest.raises(NodeError, match="verts") as exc:
        run1({"c": ("LoadPointcloud", {"file": "wrong.npz"})}, base_dir=tmp_path)
    assert exc.value.problem.field == "file"
    (tmp_path / "corrupt.npz").write_bytes(b"PK not a zip")
    (tmp_path / "corrupt.png").write_text("not a picture")
    for node_type, name in [("LoadPointcloud", "corrupt.npz"), ("LoadImage", "corrupt.png")]:
        with pytest.raises(NodeError, match="cannot read") as exc:
            run1({"c": (node_type, {"file": name})}, base_dir=tmp_path)
        assert (exc.value.problem.node, exc.value.problem.field) == ("c", "file")


def test_load_image_channels(assets):
    out = run1({"rgb": ("LoadImage", {"file": "assets/cow_mesh/cow_texture.png"}),
                "rgba": ("LoadImage", {"file": "assets/cow_mesh/cow_texture.png", "channels": "rgba"}),
                "grey": ("LoadImage", {"file": "assets/cow_mesh/cow_texture.png", "channels": "grey"})})
    with Image.open(assets / "cow_mesh" / "cow_texture.png") as im:
        w, h = im.size
        first = np.asarray(im.convert("RGB"))[0, 0] / 255.0
    assert out["rgb"]["image"].shape == (1, h, w, 3)
    assert out["rgba"]["image"].shape == (1, h, w, 4) and out["grey"]["image"].shape == (1, h, w, 1)
    assert torch.allclose(out["rgb"]["image"][0, 0, 0], torch.tensor(first, dtype=torch.float32))


# ------------------------------------------------------------------------------ primitives and ops


def test_primitives():
    out = run1({"ico": ("IcoSphere", {"level": 2, "color": [1.0, 0.0, 0.0]}), "cube": ("Cube", {"size": 2.0}),
                "torus": ("Torus", {"r": 0.25, "R": 1.0, "sides": 8, "rings": 12})})
    ico = out["ico"]["mesh"]
    assert ico.verts_packed().shape == (162, 3) and ico.faces_packed().shape == (320, 3)
    assert torch.allclose(ico.verts_packed().norm(dim=1), torch.ones(162), atol=1e-5)
    assert torch.equal(ico.textures.verts_features_packed()[0], torch.tensor([1.0, 0.0, 0.0]))
    cube = out["cube"]["mesh"]
    assert cube.verts_packed().shape == (8, 3) and cube.verts_packed().abs().max() == 1.0
    assert cube.faces_packed().shape == (12, 3)
    # outward faces: every face normal points away from the centre
    normals, centres = cube.faces_normals_packed(), cube.verts_packed()[cube.faces_packed()].mean(1)
    assert ((normals * centres).sum(1) > 0).all()
    torus = out["torus"]["mesh"]
    assert torus.verts_packed().shape == (96, 3)
    radial = torus.verts_packed()[:, :2].norm(dim=1)
    assert radial.min() >= 0.75 - 1e-4 and radial.max() <= 1.25 + 1e-4


@pytest.mark.parametrize("fit", ["sphere", "cube"])
def test_normalize_extend_and_vertex_colors(fit):
    out = run1({"cow": ("LoadMesh", {}), "norm": ("NormalizeMesh", {"fit": fit}), "ext": ("ExtendMesh", {"n": 3}),
                "paint": ("VertexColors", {"color": [0.2, 0.4, 0.6]})},
               ["cow.mesh -> norm.mesh", "norm.mesh -> ext.mesh", "ext.mesh -> paint.mesh"])
    verts = out["norm"]["mesh"].verts_packed()
    assert torch.allclose(verts.mean(0), torch.zeros(3), atol=1e-5)
    size = verts.norm(dim=1).max() if fit == "sphere" else verts.abs().max()
    assert abs(float(size) - 1.0) < 1e-5
    assert len(out["ext"]["mesh"]) == 3 and torch.equal(out["ext"]["mesh"].verts_list()[2], verts)
    painted = out["paint"]["mesh"]
    assert isinstance(painted.textures, TexturesVertex) and len(painted) == 3
    assert torch.allclose(painted.textures.verts_features_packed(), torch.tensor([0.2, 0.4, 0.6]).expand(3 * 2930, 3))
    assert isinstance(out["ext"]["mesh"].textures, TexturesUV)  # the input is not changed


def test_join_meshes_batch_scene_and_mixed_textures():
    nodes = {"ico": ("IcoSphere", {"level": 1}), "cube": ("Cube", {}), "batch": ("JoinMeshes", {}),
             "scene": ("JoinMeshes", {"mode": "scene"})}
    links = ["ico.mesh -> batch.meshes", "cube.mesh -> batch.meshes", "ico.mesh -> scene.meshes",
             "cube.mesh -> scene.meshes"]
    out = run1(nodes, links)
    assert out["batch"]["mesh"].num_verts_per_mesh().tolist() == [42, 8]
    assert out["scene"]["mesh"].num_verts_per_mesh().tolist() == [50]
    mixed = build({"cow": ("LoadMesh", {}), "ico": ("IcoSphere", {}), "join": ("JoinMeshes", {})},
                  ["cow.mesh -> join.meshes", "ico.mesh -> join.meshes"])
    with pytest.raises(NodeError, match="VertexColors") as exc:
        mixed.run(device="cpu")
    assert exc.value.problem.field == "meshes"


def test_sample_points_and_texture_baking_take_the_cow_colours():
    g = build({"cow": ("LoadMesh", {}), "sample": ("SamplePoints", {"num_samples": 3000}),
               "bake": ("TextureToVertexColors", {})},
              ["cow.mesh -> sample.mesh", "cow.mesh -> bake.mesh"], seed=1)
    out = g.run(device="cpu")
    points = out["sample"]["points"]
    assert points.points_padded().shape == (1, 3000, 3) and points.features_padded().shape == (1, 3000, 3)
    assert out["sample"]["normals"].shape == (1, 3000, 3)
    cow = out["cow"]["mesh"]
    assert points.features_packed().std(0).min() > 0.05  # texture colours, not one constant
    baked = out["bake"]["mesh"].textures.verts_features_packed()
    assert baked.shape == (2930, 3) and baked.min() >= 0 and baked.max() <= 1 and baked.std(0).min() > 0.05
    first = g.executor.cache["sample"].outputs["points"].points_packed().clone()
    g.executor.cache.clear()
    assert torch.equal(g.run(device="cpu")["sample"]["points"].points_packed(), first)  # seeded per node
    g.seed = 2
    assert not torch.equal(g.run(device="cpu")["sample"]["points"].points_packed(), first)
    assert cow.textures is not None


# ------------------------------------------------------------------------------------ cameras


def test_turntable_and_look_at_ranges_and_camera_params():
    out = run1({"turn": ("Turntable", {"views": 4, "dist": 3.0, "elev": 0.0}),
                "cams": ("FoVPerspectiveCameras", {"fov": 40.0, "znear": 0.5}),
                "look": ("LookAtViewTransform", {"dist": 2.0, "dist_end": 4.0, "views": 3, "azim": 0.0}),
                "ortho": ("FoVOrthographicCameras", {"min_x": -2.0, "max_x": 2.0})},
               ["turn.R -> cams.R", "turn.T -> cams.T", "look.R -> ortho.R", "look.T -> ortho.T"])
    centres = out["cams"]["cameras"].get_camera_center()
    assert centres.shape == (4, 3) and torch.allclose(centres.norm(dim=1), torch.full((4,), 3.0), atol=1e-5)
    angles = torch.atan2(centres[:, 0], centres[:, 2]) * 180 / math.pi
    steps = (angles.diff() % 360)
    assert torch.allclose(steps, torch.full((3,), 90.0), atol=1e-3)
    assert out["cams"]["cameras"].fov.tolist() == [40.0] * 4
    R, T = look_at_view_transform(torch.linspace(2, 4, 3), 0.0, 0.0)
    assert torch.allclose(out["look"]["T"], T) and torch.allclose(out["look"]["R"], R)
    assert out["ortho"]["cameras"].max_x.tolist() == [2.0] * 3 and len(out["ortho"]["cameras"]) == 3


def test_camera_checks_name_the_field():
    g = build({"cams": ("FoVPerspectiveCameras", {"znear": 5.0, "zfar": 1.0})}, [])
    assert [(p.node, p.field) for p in g.validate()] == [("cams", "zfar")]
    g = build({"so3": ("So3ExpMap", {}), "cams": ("FoVPerspectiveCameras", {})}, ["so3.R -> cams.T"])
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("cams", "T")


# ------------------------------------------------------------------------------------ images


def test_split_rgba_and_image_grid():
    out = run1({"tex": ("LoadImage", {"file": "assets/cow_mesh/cow_texture.png", "channels": "rgba"}),
                "grey": ("LoadImage", {"file": "assets/cow_mesh/cow_texture.png", "channels": "grey"}),
                "split": ("SplitRGBA", {}), "grid": ("ImageGrid", {"cols": 3, "padding": 2, "fill": 0.5})},
               ["tex.image -> split.images", "split.rgb -> grid.images", "grey.image -> grid.images",
                "split.rgb -> grid.images"])
    rgb, alpha = out["split"]["rgb"], out["split"]["alpha"]
    h, w = rgb.shape[1:3]
    assert rgb.shape[-1] == 3 and alpha.shape == (1, h, w, 1) and torch.equal(alpha, torch.ones_like(alpha))
    grid = out["grid"]["image"]
    assert grid.shape == (1, h, 3 * w + 4, 3)
    assert torch.equal(grid[0, :, :w], rgb[0]) and torch.equal(grid[0, :, w:w + 2], torch.full((h, 2, 3), 0.5))
    assert torch.equal(grid[0, :, w + 2:2 * w + 2], out["grey"]["image"][0].expand(h, w, 3))
    bad = build({"tex": ("LoadImage", {}), "split": ("SplitRGBA", {})}, ["tex.image -> split.images"])
    with pytest.raises(NodeError, match="RGBA") as exc:
        bad.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("split", "images")


# ------------------------------------------------------------------------------------ saving


def test_save_image_grid_numbered_alpha_and_animation(tmp_path):
    ico = ("IcoSphere", {"level": 1})
    nodes = {"ico": ico, "ext": ("ExtendMesh", {"n": 3}),
             "view": ("LookAtViewTransform", {"views": 3, "azim": 0.0, "azim_end": 240.0}),
             "cam": ("FoVPerspectiveCameras", {}), "raster": ("RasterizationSettings", {"image_size": 16}),
             "rast": ("MeshRasterizer", {}), "shader": ("SoftPhongShader", {}), "render": ("MeshRenderer", {}),
             "grid": ("SaveImage", {"filename": "grid.png", "cols": 3}),
             "each": ("SaveImage", {"filename": "frames/f.png", "mode": "numbered", "alpha": True}),
             "gif": ("SaveAnimation", {"filename": "turn.gif", "fps": 5.0})}
    links = ["ico.mesh -> ext.mesh", "view.R -> cam.R", "view.T -> cam.T", "cam.cameras -> rast.cameras",
             "raster.settings -> rast.settings", "cam.cameras -> shader.cameras",
             "rast.rasterizer -> render.rasterizer",
             "shader.shader -> render.shader", "ext.mesh -> render.meshes", "render.images -> grid.images",
             "render.images -> each.images", "render.images -> gif.images"]
    g = build(nodes, links)
    out = g.run(device="cpu", out_dir=tmp_path)
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == (48, 16) and im.mode == "RGB"
    for i in range(3):
        with Image.open(tmp_path / "frames" / f"f_{i:03d}.png") as im:
            assert im.size == (16, 16) and im.mode == "RGBA"
            first = np.asarray(im)
        expect = (out["render"]["images"][i].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        assert np.array_equal(first, expect)
    with Image.open(tmp_path / "turn.gif") as im:
        assert im.n_frames == 3 and im.info["duration"] == 200
    assert sorted(p.rsplit("/", 1)[-1] for files in g.executor.files_written.values() for p in files) == [
        "f_000.png", "f_001.png", "f_002.png", "grid.png", "turn.gif"]
    g.set_param("grid", "filename", "../escape.png")
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu", out_dir=tmp_path)
    assert (exc.value.problem.node, exc.value.problem.field) == ("grid", "filename")
    assert not (tmp_path.parent / "escape.png").exists()
    g.set_param("grid", "filename", "grid.jpg")
    assert ("grid", "filename") in {(p.node, p.field) for p in g.validate()}


@pytest.mark.parametrize("ext", ["obj", "ply", "glb"])
def test_save_mesh_round_trips(tmp_path, ext):
    nodes = {"cow": ("LoadMesh", {}), "paint": ("TextureToVertexColors", {}),
             "save": ("SaveMesh", {"filename": f"out/cow.{ext}"})}
    src = "cow.mesh" if ext == "obj" else "paint.mesh"
    g = build(nodes, ["cow.mesh -> paint.mesh", f"{src} -> save.mesh"])
    out = g.run(device="cpu", out_dir=tmp_path)
    again = build({"m": ("LoadMesh", {"file": f"out/cow.{ext}"})}, [], base_dir=tmp_path).run(device="cpu")["m"]["mesh"]
    assert again.faces_packed().shape == (5856, 3)
    assert torch.allclose(again.verts_packed(), out["cow"]["mesh"].verts_packed(), atol=1e-5)
    if ext == "obj":
        assert isinstance(again.textures, TexturesUV) and (tmp_path / "out" / "cow.png").exists()
    else:
        colours = out["paint"]["mesh"].textures.verts_features_packed()
        assert torch.allclose(again.textures.verts_features_packed(), colours, atol=1 / 255 + 1e-6)


def test_save_pointcloud_and_previews_emit_events(tmp_path):
    g = build({"ico": ("IcoSphere", {"level": 1}), "sample": ("SamplePoints", {"num_samples": 100}),
               "save": ("SavePointcloud", {"filename": "pts.ply"}), "pm": ("PreviewMesh", {}),
               "pp": ("PreviewPoints", {}), "tex": ("LoadImage", {}), "pi": ("PreviewImage", {})},
              ["ico.mesh -> sample.mesh", "sample.points -> save.points", "ico.mesh -> pm.mesh",
               "sample.points -> pp.points", "tex.image -> pi.images"])
    events = []
    g.executor.bus.subscribe(lambda e: events.append(e) if e["type"] == "preview" else None)
    g.run(device="cpu", out_dir=tmp_path)
    kinds = {e["node"]: e.get("kind") for e in events}
    assert kinds["pm"] == "mesh" and kinds["pp"] == "points" and kinds["pi"] == "image"
    pm = next(e for e in events if e["node"] == "pm")
    assert pm["verts"] == 42 and len(pm["data"]) == 42 * 12 + 80 * 12 + 42 * 12
    assert next(e for e in events if e["node"] == "pi")["data"][:4] == b"\x89PNG"
    again = build({"p": ("LoadPointcloud", {"file": "pts.ply"})}, [], base_dir=tmp_path).run(device="cpu")
    assert again["p"]["points"].points_packed().shape == (100, 3)
    assert again["p"]["points"].features_packed().shape == (100, 3)


# ------------------------------------------------------------------------------------ transforms


def test_rotations_agree_across_representations():
    s = math.sqrt(0.5)
    reps = {"aa": ("axis_angle", [0.0, 0.0, 90.0]), "quat": ("quaternion", [s, 0.0, 0.0, s]),
            "euler": ("euler", [0.0, 0.0, 90.0]), "mat": ("matrix", [0, -1, 0, 1, 0, 0, 0, 0, 1])}
    nodes = {k: ("Rotate", {"representation": r, "values": v}) for k, (r, v) in reps.items()}
    nodes["so3"] = ("So3ExpMap", {"value": [0.0, 0.0, math.pi / 2]})
    nodes["from_r"] = ("Rotate", {})
    nodes["log"] = ("So3LogMap", {})
    out = run1(nodes, ["so3.R -> from_r.R", "so3.R -> log.R"])
    p = torch.tensor([[1.0, 0.0, 0.0]])
    for key in [*reps, "from_r"]:
        assert torch.allclose(out[key]["transform"].transform_points(p), torch.tensor([[0.0, 1.0, 0.0]]),
                              atol=1e-6), key
    assert torch.allclose(out["log"]["log_rot"], torch.tensor([[0.0, 0.0, math.pi / 2]]), atol=1e-5)
    assert torch.allclose(out["so3"]["R"], so3_exp_map(torch.tensor([[0.0, 0.0, math.pi / 2]])))


def test_rotate_checks_name_the_field():
    g = build({"r": ("Rotate", {"representation": "quaternion", "values": [1.0, 0.0, 0.0]})}, [])
    assert [(p.node, p.field) for p in g.validate()] == [("r", "values")]
    g = build({"r": ("Rotate", {"representation": "euler", "convention": "XXY"})}, [])
    assert [(p.node, p.field) for p in g.validate()] == [("r", "convention")]


def test_compose_and_apply_to_meshes_and_points():
    nodes = {"ico": ("IcoSphere", {"level": 1}), "sample": ("SamplePoints", {"num_samples": 50}),
             "scale": ("Scale", {"xyz": [2.0, 2.0, 2.0]}), "move": ("Translate", {"xyz": [1.0, 0.0, 0.0]}),
             "both": ("ComposeTransforms", {}), "tm": ("TransformMeshes", {}), "tp": ("TransformPoints", {})}
    out = run1(nodes, ["scale.transform -> both.transforms", "move.transform -> both.transforms",
                       "ico.mesh -> tm.mesh", "both.transform -> tm.transform", "ico.mesh -> sample.mesh",
                       "sample.points -> tp.points", "both.transform -> tp.transform"])
    ico = out["ico"]["mesh"].verts_packed()
    assert torch.allclose(out["tm"]["mesh"].verts_packed(), ico * 2 + torch.tensor([1.0, 0.0, 0.0]))
    pts = out["sample"]["points"]
    moved = out["tp"]["points"]
    assert torch.allclose(moved.points_packed(), pts.points_packed() * 2 + torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(moved.normals_packed(), pts.normals_packed(), atol=1e-5)  # scale+move keep directions
    assert torch.equal(moved.features_packed(), pts.features_packed())


def test_project_points_to_view_ndc_and_screen():
    nodes = {"cloud": ("LoadPointcloud", {"file": "assets/pedestrian.ply"}),
             "view": ("LookAtViewTransform", {"dist": 5.0, "azim": 0.0}), "cam": ("FoVPerspectiveCameras", {}),
             "proj": ("ProjectPoints", {"image_size": 100}), "ico": ("IcoSphere", {}),
             "proj_mesh": ("ProjectPoints", {"image_size": 100})}
    out = run1(nodes, ["view.R -> cam.R", "view.T -> cam.T", "cam.cameras -> proj.cameras",
                       "cloud.points -> proj.points", "cam.cameras -> proj_mesh.cameras", "ico.mesh -> proj_mesh.mesh"])
    cams = out["cam"]["cameras"]
    xyz = out["cloud"]["points"].points_padded()
    assert torch.allclose(out["proj"]["ndc"], cams.transform_points_ndc(xyz))
    assert torch.allclose(out["proj"]["screen"], cams.transform_points_screen(xyz, image_size=((100, 100),)))
    # the origin, looked at from distance 5, is 5 units in front and at the image centre
    origin = torch.zeros(1, 1, 3)
    assert torch.allclose(cams.get_world_to_view_transform().transform_points(origin)[0, 0], torch.tensor([0, 0, 5.0]))
    assert torch.allclose(cams.transform_points_screen(origin, image_size=((100, 100),))[0, 0, :2],
                          torch.tensor([50.0, 50.0]))
    view = out["proj_mesh"]["view"]
    assert view.shape == (1, 162, 3) and torch.allclose(view[0, :, 2].mean(), torch.tensor(5.0), atol=0.05)
    bad = build({"cam": ("FoVPerspectiveCameras", {}), "proj": ("ProjectPoints", {})}, ["cam.cameras -> proj.cameras"])
    with pytest.raises(NodeError) as exc:
        bad.run(device="cpu")
    assert (exc.value.problem.node, exc.value.problem.field) == ("proj", "points")
