"""Issue 16's renderer nodes against PyTorch3D called directly: HardGouraudShader, the focal-length cameras
(PerspectiveCameras, OrthographicCameras, FishEyeCameras), CamerasFromOpenCV and its example, MeshFragments,
and a textured GLB written by SaveMesh and read by LoadMesh."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.renderer import (FoVPerspectiveCameras, HardGouraudShader, MeshRasterizer, MeshRenderer,
                                OrthographicCameras, PerspectiveCameras, PointLights, RasterizationSettings,
                                SoftPhongShader, TexturesVertex, look_at_view_transform)
from pytorch3d.renderer.fisheyecameras import FishEyeCameras
from pytorch3d.utils import cameras_from_opencv_projection

import nodegraph
from nodegraph.errors import NodeError

from test_nodes_render import build

ROOT = Path(__file__).resolve().parent.parent
COW = ROOT / "graphs" / "assets" / "cow_mesh" / "cow.obj"
CALIBRATION = ROOT / "graphs" / "assets" / "cow_opencv_calibration.json"


@pytest.fixture(scope="module")
def cow():
    return load_objs_as_meshes([str(COW)])


def render(meshes, cameras, size: int = 64, shader_cls=SoftPhongShader):
    settings = RasterizationSettings(image_size=size)
    shader = shader_cls(cameras=cameras, lights=PointLights(location=[[0.0, 0.0, -3.0]]))
    return MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=settings), shader)(meshes)


def camera_graph(camera: str, params: dict, size: int = 64, shader: str = "SoftPhongShader", mesh: str = "cow",
                 base_dir: Path = ROOT / "graphs"):
    """The cow seen from look_at(2.7, 0, 180) through ``camera`` (a node type taking R and T)."""
    nodes = {
        "cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}),
        "view": ("LookAtViewTransform", {}),
        "camera": (camera, params),
        "light": ("PointLights", {"location": [0.0, 0.0, -3.0]}),
        "raster": ("RasterizationSettings", {"image_size": size}),
        "rasterizer": ("MeshRasterizer", {}),
        "shader": (shader, {}),
        "render": ("MeshRenderer", {}),
    }
    links = ["view.R -> camera.R", "view.T -> camera.T", "camera.cameras -> rasterizer.cameras",
             "raster.settings -> rasterizer.settings", "camera.cameras -> shader.cameras",
             "light.lights -> shader.lights", "rasterizer.rasterizer -> render.rasterizer",
             "shader.shader -> render.shader"]
    if mesh == "bake":
        nodes["bake"] = ("TextureToVertexColors", {})
        links.append("cow.mesh -> bake.mesh")
    links.append(f"{mesh}.mesh -> render.meshes")
    return build(nodes, links, base_dir=base_dir)


# ------------------------------------------------------------------------------------------- shader


def test_hard_gouraud_shader_equals_direct_pytorch3d(cow):
    out = camera_graph("FoVPerspectiveCameras", {}, shader="HardGouraudShader", mesh="bake").run(device="cpu")
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    baked = out["bake"]["mesh"]
    assert isinstance(baked.textures, TexturesVertex)
    direct = render(baked, FoVPerspectiveCameras(R=R, T=T), shader_cls=HardGouraudShader)
    images = out["render"]["images"]
    assert images[..., 3].mean() > 0.03
    assert (images - direct).abs().max() < 1e-5


def test_hard_gouraud_on_a_uv_texture_names_the_mesh():
    with pytest.raises(NodeError, match=r"render\.meshes.*vertex colours"):
        camera_graph("FoVPerspectiveCameras", {}, shader="HardGouraudShader").run(device="cpu")


# ------------------------------------------------------------------------------------------- cameras


CAMERA_CASES = [
    ("PerspectiveCameras", {"focal_length": [1.6, 1.8], "principal_point": [0.1, -0.05]},
     lambda R, T: PerspectiveCameras(focal_length=((1.6, 1.8),), principal_point=((0.1, -0.05),), R=R, T=T)),
    ("PerspectiveCameras", {"focal_length": [110.0, 110.0], "principal_point": [30.0, 34.0], "in_ndc": False,
                            "image_size": [64, 64]},
     lambda R, T: PerspectiveCameras(focal_length=((110.0, 110.0),), principal_point=((30.0, 34.0),), R=R, T=T,
                                     in_ndc=False, image_size=((64, 64),))),
    ("OrthographicCameras", {"focal_length": [1.2, 1.2]},
     lambda R, T: OrthographicCameras(focal_length=((1.2, 1.2),), R=R, T=T)),
    ("OrthographicCameras", {"focal_length": [40.0, 40.0], "principal_point": [32.0, 32.0], "in_ndc": False,
                             "image_size": [64, 64]},
     lambda R, T: OrthographicCameras(focal_length=((40.0, 40.0),), principal_point=((32.0, 32.0),), R=R, T=T,
                                      in_ndc=False, image_size=((64, 64),))),
]


@pytest.mark.parametrize("camera, params, direct", CAMERA_CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                                       enumerate(CAMERA_CASES)])
def test_focal_length_cameras_render_as_direct_pytorch3d(cow, camera, params, direct):
    out = camera_graph(camera, params).run(device="cpu")
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    images = out["render"]["images"]
    assert images[..., 3].mean() > 0.02  # the cow is in the picture
    assert (images - render(cow, direct(R, T))).abs().max() < 1e-5


def test_screen_space_camera_without_image_size_names_the_field():
    g = camera_graph("PerspectiveCameras", {"in_ndc": False})
    assert ("camera", "image_size") in {(p.node, p.field) for p in g.validate()}


def test_fisheye_cameras_project_as_direct_pytorch3d():
    params = {"focal_length": 1.3, "principal_point": [0.02, -0.01], "radial_params": [0.1, -0.02, 0.0, 0, 0, 0],
              "tangential_params": [0.001, -0.002], "thin_prism_params": [0.001, 0.0, -0.001, 0.0]}
    points = torch.tensor([[0.1, 0.2, 2.0], [-0.3, 0.1, 3.0], [0.4, -0.2, 2.5]])
    R, T = look_at_view_transform(2.7, 10.0, 160.0)
    for switches in ({}, {"use_radial": False, "use_tangential": False, "use_thin_prism": False}):
        g = build({"view": ("LookAtViewTransform", {"elev": 10.0, "azim": 160.0}),
                   "camera": ("FishEyeCameras", {**params, **switches})},
                  ["view.R -> camera.R", "view.T -> camera.T"])
        cams = g.run(device="cpu")["camera"]["cameras"]
        direct = FishEyeCameras(focal_length=torch.tensor([[1.3]]), principal_point=torch.tensor([[0.02, -0.01]]),
                                radial_params=torch.tensor([[0.1, -0.02, 0.0, 0, 0, 0]]),
                                tangential_params=torch.tensor([[0.001, -0.002]]),
                                thin_prism_params=torch.tensor([[0.001, 0.0, -0.001, 0.0]]), R=R, T=T,
                                **switches)
        a, b = cams.transform_points(points[None]), direct.transform_points(points[None])
        assert torch.isfinite(a).all()
        assert (a - b).abs().max() < 1e-6
    plain = PerspectiveCameras(focal_length=1.3, principal_point=((0.02, -0.01),), R=R, T=T)
    # the distortion matters: with it on, the projection is not the pinhole's
    distorted = build({"view": ("LookAtViewTransform", {"elev": 10.0, "azim": 160.0}),
                       "camera": ("FishEyeCameras", params)}, ["view.R -> camera.R", "view.T -> camera.T"])
    bent = distorted.run(device="cpu")["camera"]["cameras"].transform_points(points[None])[..., :2]
    assert (bent - plain.transform_points(points[None])[..., :2]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------- OpenCV


def opencv_graph(file: str, base_dir: Path = ROOT / "graphs"):
    return build({"cv": ("CamerasFromOpenCV", {"file": file})}, [], base_dir=base_dir)


def test_cameras_from_opencv_equal_direct_pytorch3d_and_the_fov_view(cow):
    cams = opencv_graph("assets/cow_opencv_calibration.json").run(device="cpu")["cv"]["cameras"]
    doc = json.loads(CALIBRATION.read_text())
    direct = cameras_from_opencv_projection(torch.tensor([doc["R"]]), torch.tensor([doc["tvec"]]),
                                            torch.tensor([doc["K"]]), torch.tensor([doc["image_size"]]))
    for name in ("R", "T", "focal_length", "principal_point"):
        assert (getattr(cams, name) - getattr(direct, name)).abs().max() == 0, name
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    fov = render(cow, FoVPerspectiveCameras(R=R, T=T, fov=60.0))
    assert fov[..., 3].mean() > 0.03
    assert (render(cow, cams) - fov).abs().max() < 2e-4  # the calibration is the FoV camera's


def test_cameras_from_opencv_read_a_batch_from_npz(tmp_path):
    doc = json.loads(CALIBRATION.read_text())
    K = np.stack([doc["K"], doc["K"]])
    K[1, 0, 0] *= 2
    np.savez(tmp_path / "cams.npz", K=K, R=np.stack([doc["R"]] * 2), tvec=np.stack([doc["tvec"]] * 2),
             image_size=np.array(doc["image_size"]))
    out = opencv_graph("cams.npz", base_dir=tmp_path).run(device="cpu")["cv"]
    assert len(out["cameras"]) == 2 and out["image_size"].tolist() == [[512.0, 512.0]] * 2
    fx = out["cameras"].focal_length[:, 0]
    assert fx[1] == pytest.approx(2 * fx[0])


@pytest.mark.parametrize("content, message", [
    ({"K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}, "lacks tvec, image_size"),
    ({"K": [[1, 0], [0, 1]], "R": np.eye(3).tolist(), "tvec": [0, 0, 1], "image_size": [8, 8]}, r"`K`.*must be"),
    ([1, 2, 3], "must be an object"),
])
def test_bad_calibration_names_node_and_field(tmp_path, content, message):
    (tmp_path / "cal.json").write_text(json.dumps(content))
    with pytest.raises(NodeError, match=rf"cv\.file.*{message}"):
        opencv_graph("cal.json", base_dir=tmp_path).run(device="cpu")


def test_calibration_outside_the_allowed_folders_is_refused(tmp_path):
    inner = tmp_path / "graph"
    inner.mkdir()
    (tmp_path / "cal.json").write_text(CALIBRATION.read_text())
    g = opencv_graph("../cal.json", base_dir=inner)
    assert ("cv", "file") in {(p.node, p.field) for p in g.validate()}


def test_opencv_example_runs_at_cpu_size_and_shows_the_same_view(tmp_path, graphs_dir):
    g = nodegraph.load(graphs_dir / "render_cow_opencv.json")
    assert g.validate() == []
    assert "--set raster.image_size=128" in g.description
    g.set_params({"raster.image_size": 48})
    out = g.run(device="cpu", out_dir=tmp_path)
    assert (out["fov_render"]["images"] - out["opencv_render"]["images"]).abs().max() < 2e-4
    with Image.open(tmp_path / "opencv_vs_fov.png") as im:
        assert im.size == (4 * 48, 48)
        assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 2


# ------------------------------------------------------------------------------------------- fragments


def test_mesh_fragments_equal_the_direct_rasterizer(cow):
    g = build({"cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}), "view": ("LookAtViewTransform", {}),
               "camera": ("FoVPerspectiveCameras", {}), "raster": ("RasterizationSettings", {"image_size": 64}),
               "rasterizer": ("MeshRasterizer", {}), "frag": ("MeshFragments", {"depth_range": [1.5, 4.0]})},
              ["view.R -> camera.R", "view.T -> camera.T", "camera.cameras -> rasterizer.cameras",
               "raster.settings -> rasterizer.settings", "rasterizer.rasterizer -> frag.rasterizer",
               "cow.mesh -> frag.meshes"])
    out = g.run(device="cpu")["frag"]
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    fragments = MeshRasterizer(cameras=FoVPerspectiveCameras(R=R, T=T),
                               raster_settings=RasterizationSettings(image_size=64))(cow)
    p2f, zbuf = fragments.pix_to_face[..., :1], fragments.zbuf[..., :1]
    covered = p2f >= 0
    assert covered.float().mean() > 0.03
    assert torch.equal(out["mask"], covered.float())
    assert torch.equal(out["face_ids"], torch.where(covered, p2f, -1).float())
    assert (out["depth"][covered] - zbuf[covered]).abs().max() == 0 and (out["depth"][~covered] == 0).all()
    assert (out["depth_image"][covered] - ((zbuf[covered] - 1.5) / 2.5)).abs().max() < 1e-6
    # a pixel's normal is the barycentric blend of its face's vertex normals
    normals = out["normals"]
    assert 0 <= float(normals.min()) and float(normals.max()) <= 1
    y, x = (int(i) for i in torch.nonzero(covered[0, ..., 0])[0])
    face, bary = int(p2f[0, y, x, 0]), fragments.bary_coords[0, y, x, 0]
    n = (bary[:, None] * cow.verts_normals_packed()[cow.faces_packed()[face]]).sum(0)
    assert (normals[0, y, x] - (torch.nn.functional.normalize(n, dim=0) + 1) / 2).abs().max() < 1e-5
    # the camera is on the -z side (azim 180), so the visible surface faces -z: n_z < 0 on average
    assert float((normals[covered.expand_as(normals)].reshape(-1, 3)[:, 2] * 2 - 1).mean()) < -0.2


def test_depth_loss_reads_the_depth_image():
    g = build({"cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}), "view": ("LookAtViewTransform", {}),
               "far": ("LookAtViewTransform", {"dist": 3.0}),
               "camera": ("FoVPerspectiveCameras", {}), "camera2": ("FoVPerspectiveCameras", {}),
               "raster": ("RasterizationSettings", {"image_size": 32}),
               "rasterizer": ("MeshRasterizer", {}), "rasterizer2": ("MeshRasterizer", {}),
               "frag": ("MeshFragments", {}), "frag2": ("MeshFragments", {}), "loss": ("L1Loss", {})},
              ["view.R -> camera.R", "view.T -> camera.T", "far.R -> camera2.R", "far.T -> camera2.T",
               "camera.cameras -> rasterizer.cameras", "camera2.cameras -> rasterizer2.cameras",
               "raster.settings -> rasterizer.settings", "raster.settings -> rasterizer2.settings",
               "rasterizer.rasterizer -> frag.rasterizer", "rasterizer2.rasterizer -> frag2.rasterizer",
               "cow.mesh -> frag.meshes", "cow.mesh -> frag2.meshes", "frag.depth -> loss.input",
               "frag2.depth -> loss.target"])
    loss = g.run(device="cpu")["loss"]["loss"]
    assert float(loss.total) > 0.01  # the cow is 0.3 farther in the target


# ------------------------------------------------------------------------------------------- GLB


def test_glb_written_by_save_mesh_renders_the_cow_like_its_obj(cow, tmp_path):
    save = build({"cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}), "save": ("SaveMesh",
                                                                                     {"filename": "cow.glb"})},
                 ["cow.mesh -> save.mesh"])
    save.run(device="cpu", out_dir=tmp_path)
    back = build({"glb": ("LoadMesh", {"file": "cow.glb"})}, [], base_dir=tmp_path).run(device="cpu")["glb"]["mesh"]
    assert type(back.textures).__name__ == "TexturesUV"
    assert torch.equal(back.textures.maps_padded(), cow.textures.maps_padded())
    # the seam vertices the GLB had to split are welded back: the cow's own vertices and faces, in order
    assert torch.equal(back.verts_packed(), cow.verts_packed()) and torch.equal(back.faces_packed(),
                                                                                cow.faces_packed())
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    cams = FoVPerspectiveCameras(R=R, T=T)
    a, b = render(cow, cams, size=96), render(back, cams, size=96)
    assert a[..., 3].mean() > 0.03
    assert (a - b).abs().max() < 1e-4
    # and back to OBJ: GLB -> OBJ renders the same too
    again = build({"glb": ("LoadMesh", {"file": "cow.glb"}), "save": ("SaveMesh", {"filename": "again.obj"})},
                  ["glb.mesh -> save.mesh"], base_dir=tmp_path)
    again.run(device="cpu", out_dir=tmp_path)
    obj = load_objs_as_meshes([str(tmp_path / "again.obj")])
    assert (render(obj, cams, size=96) - a).abs().max() < 1e-4


def test_glb_trimesh_fallback_keeps_the_texture(tmp_path):
    """A GLB that PyTorch3D's reader refuses (two meshes) still loads, through trimesh, with its texture."""
    import trimesh

    img = Image.new("RGB", (4, 4), (200, 30, 40))
    parts = []
    for dx in (0.0, 2.0):
        box = trimesh.creation.box()
        box.apply_translation([dx, 0, 0])
        box.visual = trimesh.visual.TextureVisuals(uv=np.full((len(box.vertices), 2), 0.5),
                                                   material=trimesh.visual.material.PBRMaterial(baseColorTexture=img))
        parts.append(box)
    trimesh.Scene(parts).export(str(tmp_path / "two.glb"))
    mesh = build({"m": ("LoadMesh", {"file": "two.glb"})}, [], base_dir=tmp_path).run(device="cpu")["m"]["mesh"]
    assert mesh.faces_packed().shape[0] == 24
    assert type(mesh.textures).__name__ == "TexturesUV"
    assert (mesh.textures.maps_padded()[0, 0, 0] - torch.tensor([200, 30, 40]) / 255).abs().max() < 1e-6


def test_fisheye_cameras_render_the_cow_as_direct_pytorch3d(cow):
    params = {"focal_length": 0.5, "radial_params": [0.05, 0.0, 0.0, 0.0, 0.0, 0.0]}
    images = camera_graph("FishEyeCameras", params).run(device="cpu")["render"]["images"]
    R, T = look_at_view_transform(2.7, 0.0, 180.0)
    direct = FishEyeCameras(focal_length=torch.tensor([[0.5]]), radial_params=torch.tensor([[0.05, 0, 0, 0, 0, 0.0]]),
                            R=R, T=T)
    assert 0.1 < float(images[..., 3].mean()) < 0.9
    assert (images - render(cow, direct)).abs().max() < 1e-5


def test_sfm_names_are_aliases_of_the_focal_length_cameras():
    from nodegraph.registry import default_registry

    assert default_registry().get("SfMPerspectiveCameras").name == "PerspectiveCameras"
    assert default_registry().get("SfMOrthographicCameras").name == "OrthographicCameras"


def test_mesh_fragments_face_ids_are_per_mesh_in_a_batch():
    """In a batch of two meshes the second image's ids count from its own first face, not the packed index."""
    g = build({"cow": ("LoadMesh", {"file": "assets/cow_mesh/cow.obj"}), "batch": ("ExtendMesh", {"n": 2}),
               "view": ("LookAtViewTransform", {"views": 2, "azim_end": 90.0}),
               "camera": ("FoVPerspectiveCameras", {}), "raster": ("RasterizationSettings", {"image_size": 32}),
               "rasterizer": ("MeshRasterizer", {}), "frag": ("MeshFragments", {})},
              ["cow.mesh -> batch.mesh", "view.R -> camera.R", "view.T -> camera.T",
               "camera.cameras -> rasterizer.cameras", "raster.settings -> rasterizer.settings",
               "rasterizer.rasterizer -> frag.rasterizer", "batch.mesh -> frag.meshes"])
    out = g.run(device="cpu")["frag"]
    ids = out["face_ids"]
    assert ids.shape == (2, 32, 32, 1)
    assert float(ids[1].max()) < 5856 and float(ids[1].max()) > 0  # the cow has 5856 faces
    assert float(out["face_image"].max()) <= 1.0


def test_glb_hard_edges_stay_split_and_keep_their_normals(tmp_path):
    """A flat-shaded box stores one normal per face corner: welding joins only corners that agree in position
    and normal (4 per side), so its edges stay hard."""
    import trimesh

    box = trimesh.creation.box()
    box.unmerge_vertices()  # 36 corners, each with its face's normal
    box.export(str(tmp_path / "flat.glb"), include_normals=True)
    mesh = build({"m": ("LoadMesh", {"file": "flat.glb"})}, [], base_dir=tmp_path).run(device="cpu")["m"]["mesh"]
    assert mesh.verts_packed().shape == (24, 3) and mesh.faces_packed().shape == (12, 3)
    normals = mesh.verts_normals_packed()
    assert torch.allclose(normals.abs().max(dim=1).values, torch.ones(24))  # axis-aligned: the faces' own
