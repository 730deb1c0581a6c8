"""Loading nodes: meshes, point clouds and images from files next to the graph (or in allowed data folders).

OBJ files (with their MTL and texture image) load through PyTorch3D's ``load_objs_as_meshes``, as the
tutorials do; PLY through ``pytorch3d.io.IO``; GLB through PyTorch3D's ``MeshGlbFormat`` (texture kept; trimesh
when it cannot); GLTF, STL and OFF through trimesh (a GLTF's base-colour texture kept). Point clouds come from
PLY (with or without per-vertex colour) or from NPZ archives holding ``verts`` and optionally ``rgb``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nodegraph.errors import NodeError
from nodegraph.spec import Choice, File, Input, Output, Text, node

from ._files import (
    check_archive,
    check_image,
    glb_json,
    gltf_companions,
    obj_companions,
)

MESH_EXTENSIONS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
POINTS_EXTENSIONS = (".ply", ".npz")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _trimesh_geometry(path: Path):
    """The file's one mesh through trimesh: a scene's single geometry as stored (its own normals kept), several
    geometries placed by their transforms and concatenated (what ``force="mesh"`` makes of the scene, without
    parsing the file a second time)."""
    import trimesh

    loaded = trimesh.load(str(path), process=False)
    if isinstance(loaded, trimesh.Scene):
        parts = list(loaded.geometry.values())
        if len(parts) == 1:
            return parts[0]
        return trimesh.util.concatenate([g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)])
    return loaded


def _load_trimesh(path: Path, device: torch.device):
    """A mesh through trimesh (GLB/GLTF, STL, OFF): a base-colour texture with UVs becomes TexturesUV, vertex
    colours TexturesVertex."""
    from pytorch3d.renderer import TexturesUV, TexturesVertex
    from pytorch3d.structures import Meshes

    loaded = _trimesh_geometry(path)
    verts = torch.as_tensor(np.asarray(loaded.vertices), dtype=torch.float32, device=device)
    faces = torch.as_tensor(np.asarray(loaded.faces), dtype=torch.int64, device=device)
    textures = None
    visual = loaded.visual
    if visual.kind == "texture" and getattr(visual, "uv", None) is not None:
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        if image is not None:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
            uvs = torch.as_tensor(np.asarray(visual.uv), dtype=torch.float32, device=device)
            textures = TexturesUV(maps=[torch.as_tensor(rgb, device=device)], faces_uvs=[faces], verts_uvs=[uvs])
    colors = getattr(visual, "vertex_colors", None) if visual.kind == "vertex" else None
    if colors is not None and len(colors) == len(verts):
        rgb = torch.as_tensor(np.asarray(colors)[:, :3], dtype=torch.float32, device=device) / 255.0
        textures = TexturesVertex([rgb])
    return Meshes([verts], [faces], textures=textures)


# glTF component types of normalised integer colours -> their largest value
_COLOR_SCALE = {5121: 255.0, 5123: 65535.0}


def _glb_attributes(doc: dict) -> dict[str, int]:
    """The vertex attributes of a GLB's first primitive (POSITION, NORMAL, COLOR_0, ...), each with its
    accessor's component type, from the file's JSON chunk (``glb_json``)."""
    attributes = doc["meshes"][0]["primitives"][0]["attributes"]
    return {name: doc["accessors"][index]["componentType"] for name, index in attributes.items()}


def _weld_seams(mesh, normals: torch.Tensor):
    """Join the vertices a GLB had to split along UV seams: those with the same position and normal (and colour)
    become one again, in first-seen order, the UVs staying per corner (TexturesUV keeps its own face indices).
    An OBJ written from the result then has the topology, and so the shading, of the OBJ the GLB came from;
    vertices that differ in their normal (hard edges) stay apart."""
    from pytorch3d.renderer import TexturesUV, TexturesVertex
    from pytorch3d.structures import Meshes

    verts, faces, tex = mesh.verts_packed(), mesh.faces_packed(), mesh.textures
    keys = [verts, normals]
    if isinstance(tex, TexturesVertex):
        keys.append(tex.verts_features_packed())
    unique, inverse = torch.unique(torch.cat(keys, dim=1), dim=0, return_inverse=True)
    first = torch.full((unique.shape[0],), verts.shape[0], dtype=torch.int64, device=verts.device)
    first = first.scatter_reduce(0, inverse, torch.arange(verts.shape[0], device=verts.device), reduce="amin")
    order = torch.argsort(first)  # welded vertices in the order they first appear
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.shape[0], device=verts.device)
    keep = first[order]
    new_faces = rank[inverse][faces]
    if isinstance(tex, TexturesUV):
        tex = TexturesUV(maps=tex.maps_padded(), faces_uvs=[faces], verts_uvs=tex.verts_uvs_list())
    elif isinstance(tex, TexturesVertex):
        tex = TexturesVertex([tex.verts_features_packed()[keep]])
    return Meshes([verts[keep]], [new_faces], textures=tex, verts_normals=[normals[keep]])


def _load_glb(path: Path, device: torch.device, doc: dict | None = None):
    """A GLB through PyTorch3D's reader (``MeshGlbFormat`` registered on ``IO``: its TexturesUV or vertex
    colours); trimesh reads what that cannot. Normals stored in the file are kept (PyTorch3D's reader drops
    them), and the vertices a GLB splits along UV seams are welded back (see ``_weld_seams``). ``doc``: the file's
    JSON chunk when the caller has read it already."""
    from pytorch3d.io import IO
    from pytorch3d.io.experimental_gltf_io import MeshGlbFormat
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    io = IO()
    io.register_meshes_format(MeshGlbFormat())
    try:
        mesh = io.load_mesh(str(path), include_textures=True, device=device)
    except Exception:  # a GLB PyTorch3D cannot read (several primitives, other materials): trimesh can
        return _load_trimesh(path, device)
    attributes = _glb_attributes(glb_json(path) if doc is None else doc)
    tex = mesh.textures
    if isinstance(tex, TexturesVertex):  # PyTorch3D keeps RGBA and integer colours as stored; we want RGB in [0, 1]
        scale = _COLOR_SCALE.get(attributes.get("COLOR_0"), 1.0)
        mesh = Meshes(mesh.verts_list(), mesh.faces_list(),
                      textures=TexturesVertex([f[:, :3] / scale for f in tex.verts_features_list()]))
    if "NORMAL" in attributes:  # without normals glTF asks for flat shading: the split vertices stay split
        normals = np.asarray(_trimesh_geometry(path).vertex_normals)
        if normals.shape == tuple(mesh.verts_packed().shape):
            mesh = _weld_seams(mesh, torch.as_tensor(normals, dtype=torch.float32, device=device))
    return mesh


def _load_mesh_export(x) -> str:
    """``load_objs_as_meshes`` for OBJ, ``IO().load_mesh`` for PLY (the loader the file's extension picks); GLB
    and the trimesh formats through the node's own readers, copied (the script then needs trimesh where they
    use it: GLTF, STL, OFF, a GLB with normals or one PyTorch3D cannot read)."""
    ext = Path(x.values["file"]).suffix.lower()
    if ext == ".obj":
        x.imports("from pytorch3d.io import load_objs_as_meshes")
        return f"load_objs_as_meshes([{x.path('file')}], device=device)"
    if ext == ".ply":
        x.imports("from pytorch3d.io import IO")
        return f"IO().load_mesh({x.path('file')}, device=device)"
    x.imports("from pathlib import Path")
    reader = x.helper(_load_glb) if ext == ".glb" else x.helper(_load_trimesh)
    return f"{reader}(Path({x.path('file')}), device)"


@node(
    category="io",
    export=_load_mesh_export,
    params=[File("file", "assets/cow_mesh/cow.obj", "mesh file: OBJ (+MTL, texture), PLY, GLB/GLTF, STL or OFF",
                 extensions=MESH_EXTENSIONS)],
    outputs=[Output("mesh", "Meshes", "a batch of one mesh, with its texture when the file has one")],
)
def LoadMesh(ctx, file):
    """Load a triangle mesh from a file.

    OBJ files load with their materials and texture image (``load_objs_as_meshes``), PLY files with their
    vertex colours when present, GLB with its texture (PyTorch3D's ``MeshGlbFormat``, trimesh where that cannot read
    it), GLTF/STL/OFF through trimesh.
    """
    path = ctx.asset(file)
    ext = path.suffix.lower()
    if ext == ".obj":  # what the file names is confined and size-checked before any parser opens it
        obj_companions(ctx, "file", path, repr(file))
    elif ext in (".gltf", ".glb"):
        doc = gltf_companions(ctx, "file", path, repr(file))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch3D warns, then keeps bad faces; checked below instead
            if ext == ".obj":
                from pytorch3d.io import load_objs_as_meshes

                mesh = load_objs_as_meshes([str(path)], device=ctx.device)
            elif ext == ".ply":
                from pytorch3d.io import IO

                mesh = IO().load_mesh(str(path), device=ctx.device)
            elif ext == ".glb":
                mesh = _load_glb(path, ctx.device, doc)
            else:
                mesh = _load_trimesh(path, ctx.device)
    except Exception as exc:  # any parser failure means the file is not a mesh we can read
        ctx.fail("file", f"cannot read {file!r} as a mesh: {type(exc).__name__}: {exc}")
    faces, nverts = mesh.faces_packed(), mesh.verts_packed().shape[0]
    if faces.shape[0] == 0:
        ctx.fail("file", f"{file!r} has no faces (is it a point cloud? use LoadPointcloud)")
    if faces.min() < 0 or faces.max() >= nverts:
        ctx.fail("file", f"{file!r} has faces that refer to vertices it does not have ({nverts} vertices, face "
                         f"index {int(faces.max()) + 1})")
    return mesh


def _load_points_export(x) -> str:
    """``IO().load_pointcloud`` for PLY; an NPZ's ``verts``/``rgb`` arrays as the node reads them."""
    if Path(x.values["file"]).suffix.lower() == ".ply":
        x.imports("from pytorch3d.io import IO")
        return f"IO().load_pointcloud({x.path('file')}, device=device)"
    x.imports("import numpy as np", "from pytorch3d.structures import Pointclouds")
    data, feats = x.name("data"), x.name("rgb")
    x.line(f"{data} = np.load({x.path('file')})",
           f"{feats} = torch.as_tensor({data}['rgb'], dtype=torch.float32, device=device) if 'rgb' in {data} "
           "else None",
           f"if {feats} is not None and {feats}.numel() and {feats}.max() > 1.0:",
           f"    {feats} = {feats} / 255.0")
    return (f"Pointclouds(points=[torch.as_tensor({data}['verts'], dtype=torch.float32, device=device)], "
            f"features=None if {feats} is None else [{feats}])")


@node(
    category="io",
    export=_load_points_export,
    params=[File("file", "assets/pedestrian.ply", "PLY (x, y, z and optional red, green, blue) or NPZ with "
                 "`verts` (N, 3) and optional `rgb` (N, 3 or 4)", extensions=POINTS_EXTENSIONS)],
    outputs=[Output("points", "Pointclouds", "a batch of one cloud; colours, when present, are its features")],
)
def LoadPointcloud(ctx, file):
    """Load a point cloud from a PLY file (with or without per-vertex colour) or an NPZ archive."""
    from pytorch3d.structures import Pointclouds

    path = ctx.asset(file)
    try:
        if path.suffix.lower() == ".npz":
            check_archive(ctx, "file", path, repr(file))
            data = np.load(str(path), allow_pickle=False)
            if "verts" not in data:
                ctx.fail("file", f"{file!r} has no `verts` array (it has {sorted(data.files)})")
            verts = torch.as_tensor(data["verts"], dtype=torch.float32, device=ctx.device)
            if verts.dim() != 2 or verts.shape[1] != 3:
                ctx.fail("file", f"`verts` in {file!r} must be (N, 3), got {list(verts.shape)}")
            feats = None
            if "rgb" in data:
                feats = torch.as_tensor(data["rgb"], dtype=torch.float32, device=ctx.device)
                if feats.shape[0] != verts.shape[0]:
                    ctx.fail("file", f"`rgb` has {feats.shape[0]} rows but `verts` has {verts.shape[0]}")
                if feats.numel() and feats.max() > 1.0:
                    feats = feats / 255.0
            return Pointclouds(points=[verts], features=None if feats is None else [feats])
        from pytorch3d.io import IO

        return IO().load_pointcloud(str(path), device=ctx.device)
    except NodeError:
        raise
    except Exception as exc:  # any parser failure means the file is not a cloud we can read
        ctx.fail("file", f"cannot read {file!r} as a point cloud: {type(exc).__name__}: {exc}")


def _load_image_export(x) -> str:
    """PIL's ``Image.open(...).convert(mode)`` as floats in [0, 1], a batch of one."""
    x.imports("import numpy as np", "from PIL import Image")
    array = x.name("array")
    mode = {"rgb": "RGB", "rgba": "RGBA", "grey": "L"}[x.fixed("channels")]
    x.line(f"with Image.open({x.path('file')}) as im:",
           f"    {array} = np.asarray(im.convert({mode!r}), dtype=np.float32) / 255.0",
           f"{array} = {array}[..., None] if {array}.ndim == 2 else {array}")
    return f"torch.as_tensor({array}, device=device)[None]"


@node(
    category="io",
    params=[
        File("file", "assets/cow_mesh/cow_texture.png", "image file", extensions=IMAGE_EXTENSIONS),
        Choice("channels", "rgb", "convert to RGB, RGBA or grey", choices=("rgb", "rgba", "grey")),
    ],
    outputs=[Output("image", "Images", "(1, H, W, C) floats in [0, 1]")],
    export=lambda x: _load_image_export(x),
)
def LoadImage(ctx, file, channels):
    """Load an image file as a batch of one float image."""
    path = ctx.asset(file)
    check_image(ctx, "file", path, repr(file))
    try:
        with Image.open(path) as im:
            mode = {"rgb": "RGB", "rgba": "RGBA", "grey": "L"}[channels]
            array = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        ctx.fail("file", f"cannot read {file!r} as an image: {exc}")
    if array.ndim == 2:
        array = array[..., None]
    return torch.as_tensor(array, device=ctx.device)[None]


@node(
    category="io",
    params=[File("file", "assets/camera_graph.npz", "NPZ archive or NPY array", extensions=(".npz", ".npy")),
            Text("key", "R_absolute_gt", "which array of an NPZ archive (ignored for NPY)")],
    outputs=[Output("tensor", "Tensor", "the array as a tensor (floats as float32, integers as int64)")],
    export=lambda x: _load_tensor_export(x),
)
def LoadTensor(ctx, file, key):
    """Load one array from an NPZ archive (or an NPY file) as a tensor, e.g. the bundle-adjustment tutorial's
    cameras and camera-graph edges from ``camera_graph.npz``. Pickled object arrays are refused."""
    path = ctx.asset(file)
    check_archive(ctx, "file", path, repr(file))  # refused before numpy inflates it, as LoadPointcloud does
    try:
        array = read_array(path, key)
    except KeyError as exc:
        ctx.fail("key", f"{file!r} {exc.args[0]}")
    except (OSError, ValueError) as exc:
        ctx.fail("file", f"cannot read {file!r}: {type(exc).__name__}: {exc}")
    if array.dtype.kind not in "fiub":
        ctx.fail("file", f"{key!r} in {file!r} holds {array.dtype} values, not numbers")
    return array_tensor(array, ctx.device)


def read_array(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of an NPZ archive, or the array of an NPY file, never unpickling (a KeyError naming the
    archive's arrays when it has no ``key``). Exported scripts call this too."""
    if path.suffix.lower() == ".npy":
        return np.load(str(path), allow_pickle=False)
    with np.load(str(path), allow_pickle=False) as data:
        if key not in data.files:
            raise KeyError(f"has no array {key!r} (it has {sorted(data.files)})")
        return data[key]


def array_tensor(array: np.ndarray, device) -> torch.Tensor:
    """A numeric array as a tensor on ``device``: floats as float32, booleans as bool, integers as int64."""
    dtype = torch.float32 if array.dtype.kind == "f" else torch.bool if array.dtype.kind == "b" else torch.int64
    return torch.as_tensor(np.ascontiguousarray(array), device=device).to(dtype)


def _load_tensor_export(x) -> str:
    x.imports("from pathlib import Path")
    array = f"{x.helper(read_array)}(Path({x.path('file')}), {x.params['key']})"
    return f"{x.helper(array_tensor)}({array}, device)"
