"""Files named inside files stay in the allowed folders, nothing decodes past a limit, and run-time failures of
PyTorch3D are errors naming the node and field at fault (issue 11). Real files, real loaders, CPU."""
from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nodegraph
from nodegraph.errors import GraphError, NodeError

ROOT = Path(__file__).resolve().parent.parent
COW = ROOT / "graphs" / "assets" / "cow_mesh"
TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n"


def error_of(session, **kw) -> NodeError:
    with pytest.raises(NodeError) as info:
        session.run(device="cpu", **kw)
    return info.value


def loader(folder: Path, type_name: str, file: str):
    s = nodegraph.new(name="t", base_dir=folder)
    s.add_node(type_name, "load", file=file)
    return s


@pytest.fixture
def places(tmp_path):
    """An allowed folder (the graph's) and one outside it holding a 'secret' image and MTL."""
    inside, outside = tmp_path / "graph", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(outside / "secret.png")
    (outside / "x.mtl").write_text("newmtl m\nmap_Kd secret.png\n")
    return inside, outside


def test_an_obj_naming_an_mtl_outside_is_refused_without_saying_where_it_leads(places):
    inside, outside = places
    messages = []
    for target in (f"{outside}/x.mtl", "../outside/x.mtl", "../outside/does_not_exist.mtl"):
        (inside / "m.obj").write_text(f"mtllib {target}\n" + TRIANGLE)
        err = error_of(loader(inside, "LoadMesh", "m.obj"))
        assert (err.problem.node, err.problem.field) == ("load", "file")
        assert "outside the allowed folders" in err.problem.message
        assert str(outside) not in err.problem.message.replace(target, "")  # only the name as written
        messages.append(err.problem.message.replace(target, "NAME"))
    assert len(set(messages)) == 1  # the same answer whether the file exists or not


def test_an_mtl_texture_outside_is_refused_and_its_pixels_never_read(places):
    inside, outside = places
    for texture in (str(outside / "secret.png"), "../outside/secret.png", "-s 1 1 1 ../outside/secret.png"):
        (inside / "m.mtl").write_text(f"newmtl m\nmap_Kd {texture}\n")
        (inside / "m.obj").write_text("mtllib m.mtl\n" + TRIANGLE)
        err = error_of(loader(inside, "LoadMesh", "m.obj"))
        assert err.problem.field == "file" and "outside the allowed folders" in err.problem.message, err
    Image.new("RGB", (4, 4), (0, 255, 0)).save(inside / "ok.png")  # the same files inside: loaded
    (inside / "m.mtl").write_text("newmtl m\nmap_Kd ok.png\n")
    mesh = loader(inside, "LoadMesh", "m.obj").run(device="cpu")["load"]["mesh"]
    assert mesh.textures.maps_padded()[0, ..., 1].min() == 1.0  # green: the texture inside was read


def test_gltf_buffers_and_images_outside_are_refused(places):
    inside, outside = places
    (outside / "buf.bin").write_bytes(b"\0" * 36)
    for uri in ("../outside/buf.bin", str(outside / "buf.bin"), "..%2Foutside%2Fbuf.bin"):
        doc = {"asset": {"version": "2.0"}, "buffers": [{"uri": uri, "byteLength": 36}], "images": []}
        (inside / "m.gltf").write_text(json.dumps(doc))
        err = error_of(loader(inside, "LoadMesh", "m.gltf"))
        assert err.problem.field == "file" and "outside the allowed folders" in err.problem.message, err


def test_a_symlink_loop_or_an_overlong_name_is_a_problem_on_the_field(tmp_path):
    os.symlink(tmp_path / "b.obj", tmp_path / "a.obj")
    os.symlink(tmp_path / "a.obj", tmp_path / "b.obj")
    for name, words in (("a.obj", "symlink loop"), ("x" * 300 + ".obj", "cannot be used as a file name")):
        problems = {(p.node, p.field): p.message for p in loader(tmp_path, "LoadMesh", name).validate()}
        assert words in problems[("load", "file")], problems


def _png_claiming(path: Path, width: int, height: int) -> int:
    """A tiny real PNG whose header claims ``width`` x ``height`` (its IHDR rewritten, CRC fixed)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"IHDR")
    data[at + 4:at + 12] = struct.pack(">II", width, height)
    data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
    path.write_bytes(bytes(data))
    return len(data)


@pytest.mark.parametrize("width,height", [(60000, 60000), (9000, 9000)])
def test_an_image_claiming_a_huge_size_is_refused_with_the_figure(tmp_path, width, height):
    size = _png_claiming(tmp_path / "bomb.png", width, height)
    assert size < 200
    err = error_of(loader(tmp_path, "LoadImage", "bomb.png"))
    assert (err.problem.node, err.problem.field) == ("load", "file")
    assert str(width * height) in err.problem.message or f"{width} x {height}" in err.problem.message, err
    (tmp_path / "m.mtl").write_text("newmtl m\nmap_Kd bomb.png\n")  # the same as a mesh's texture
    (tmp_path / "m.obj").write_text("mtllib m.mtl\n" + TRIANGLE)
    err = error_of(loader(tmp_path, "LoadMesh", "m.obj"))
    assert err.problem.field == "file" and "texture" in err.problem.message, err


def _npz_claiming(path: Path, arrays: dict, decoded: int) -> None:
    """A real .npz whose zip directory says its first array inflates to ``decoded`` bytes."""
    np.savez_compressed(path, **arrays)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")  # the first central directory entry: uncompressed size at +24
    data[at + 24:at + 28] = struct.pack("<I", decoded)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.infolist()[0].file_size == decoded


def test_an_npz_that_inflates_past_the_limit_is_refused_with_the_figure(tmp_path):
    _npz_claiming(tmp_path / "cloud.npz", {"verts": np.zeros((10, 3))}, 3_600_000_000)
    err = error_of(loader(tmp_path, "LoadPointcloud", "cloud.npz"))
    assert err.problem.field == "file" and "3.4 GiB" in err.problem.message and "limited" in err.problem.message
    for type_name in ("LoadTensor", "CamerasFromOpenCV"):  # every loader of an archive checks it first
        err = error_of(loader(tmp_path, type_name, "cloud.npz"))
        assert err.problem.field == "file" and "3.4 GiB" in err.problem.message, (type_name, err)
    body = ROOT / "graphs" / "assets" / "standin_body" / "standin_body.npz"
    with np.load(body) as npz:
        _npz_claiming(tmp_path / "body.npz", {k: npz[k] for k in npz.files}, 3_600_000_000)
    err = error_of(loader(tmp_path, "LoadBodyModel", "body.npz"))
    assert err.problem.field == "file" and "3.4 GiB" in err.problem.message
    with open(tmp_path / "points.npy", "wb") as f:  # keypoints whose header claims 1.4 TB and holds nothing
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (2_000_000_000, 24, 3)})
    s = loader(tmp_path, "LoadKeypoints", "points.npy")
    err = error_of(s)
    assert err.problem.field == "file" and "TiB" in err.problem.message, err


def cow_render(**raster):
    s = nodegraph.load(ROOT / "graphs" / "render_textured_cow.json")
    s.set_param("raster", "image_size", 16)
    for k, v in raster.items():
        s.set_param("raster", k, v)
    return s


def test_a_mesh_render_too_large_for_memory_is_refused_with_the_figure():
    err = error_of(cow_render(image_size=4096, faces_per_pixel=1000), targets=["render"])
    assert (err.problem.node, err.problem.field) == ("render", "rasterizer")
    assert "4096 x 4096" in err.problem.message and "625.0 GiB" in err.problem.message


def test_mesh_fragments_too_large_for_memory_are_refused_with_the_figure():
    s = cow_render(image_size=4096, faces_per_pixel=1000)
    s.add_node("MeshFragments", "fragments")
    s.connect("rasterizer", "rasterizer", "fragments", "rasterizer")
    s.connect("cow", "mesh", "fragments", "meshes")
    err = error_of(s, targets=["fragments"])
    assert (err.problem.node, err.problem.field) == ("fragments", "rasterizer")
    assert "625.0 GiB" in err.problem.message


def test_a_point_render_too_large_for_memory_is_refused_with_the_figure():
    s = nodegraph.load(ROOT / "graphs" / "render_coloured_points.json")
    s.set_param("raster", "image_size", 4096)
    s.set_param("raster", "points_per_pixel", 150)
    s.set_param("sample", "num_samples", 1000)
    import torch

    from nodegraph.memory import available_bytes

    if 4096 * 4096 * 150 * 20 < available_bytes(torch.device("cpu")):
        pytest.skip("this machine has the 47 GiB such a render needs")
    err = error_of(s, targets=["render"])
    assert (err.problem.node, err.problem.field) == ("render", "rasterizer"), err
    assert "46.9 GiB" in err.problem.message and "150 points per pixel" in err.problem.message


def test_degenerate_views_are_blamed_on_the_view_node():
    s = cow_render()
    s.set_param("view", "dist", 5e-324)
    err = error_of(s)
    assert (err.problem.node, err.problem.field) == ("view", "dist")
    s.set_param("view", "dist", 2.7)
    s.set_param("view", "up", [0.0, 0.0, 1e-320])  # not zero, but no direction in single precision
    assert (error_of(s).problem.node, error_of(s).problem.field) == ("view", "up")
    s.set_param("view", "up", [0.0, 0.0, 0.0])
    assert ("view", "up") in {(p.node, p.field) for p in s.validate()}


def test_a_shader_without_cameras_is_named():
    s = cow_render()
    s.graph.links = [l for l in s.graph.links if not (l.dst == "shader" and l.dst_port == "cameras")]
    err = error_of(s)
    assert (err.problem.node, err.problem.field) == ("render", "shader") and "cameras" in err.problem.message


def test_a_depth_beyond_single_precision_is_a_validation_problem():
    s = nodegraph.load(ROOT / "graphs" / "volume_rendering_steps.json")
    s.set_param("raysampler", "max_depth", 1e308)
    with pytest.raises(GraphError) as info:
        s.run(device="cpu")
    assert [(p.node, p.field) for p in info.value.problems] == [("raysampler", "max_depth")]
    assert "single precision" in str(info.value)
