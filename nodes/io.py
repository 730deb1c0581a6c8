"""Loading nodes: meshes, point clouds and images from files next to the graph (or in allowed data folders).

OBJ files (with their MTL and texture image) load through PyTorch3D's ``load_objs_as_meshes``, as the
tutorials do; PLY through ``pytorch3d.io.IO``; GLB, GLTF, STL and OFF through trimesh. Point clouds come from
PLY (with or without per-vertex colour) or from NPZ archives holding ``verts`` and optionally ``rgb``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nodegraph.errors import NodeError
from nodegraph.spec import Choice, File, Input, Output, node

MESH_EXTENSIONS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
POINTS_EXTENSIONS = (".ply", ".npz")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _load_trimesh(path: Path, device: torch.device):
    """A mesh through trimesh (GLB, STL, OFF): vertex colours become TexturesVertex when the file has them."""
    import trimesh
    from pytorch3d.renderer import TexturesVertex
    from pytorch3d.structures import Meshes

    loaded = trimesh.load(str(path), force="mesh", process=False)
    verts = torch.as_tensor(np.asarray(loaded.vertices), dtype=torch.float32, device=device)
    faces = torch.as_tensor(np.asarray(loaded.faces), dtype=torch.int64, device=device)
    textures = None
    colors = getattr(loaded.visual, "vertex_colors", None) if loaded.visual.kind == "vertex" else None
    if colors is not None and len(colors) == len(verts):
        rgb = torch.as_tensor(np.asarray(colors)[:, :3], dtype=torch.float32, device=device) / 255.0
        textures = TexturesVertex([rgb])
    return Meshes([verts], [faces], textures=textures)


def _load_mesh_export(x) -> str:
    """``load_objs_as_meshes`` for OBJ, ``IO().load_mesh`` for PLY (the loader the file's extension picks)."""
    ext = Path(x.values["file"]).suffix.lower()
    if ext == ".obj":
        x.imports("from pytorch3d.io import load_objs_as_meshes")
        return f"load_objs_as_meshes([{x.path('file')}], device=device)"
    if ext == ".ply":
        x.imports("from pytorch3d.io import IO")
        return f"IO().load_mesh({x.path('file')}, device=device)"
    x.fail(f"{ext} meshes load through trimesh, which export does not write yet", "file")


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
    vertex colours when present, GLB/GLTF/STL/OFF through trimesh.
    """
    path = ctx.asset(file)
    ext = path.suffix.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch3D warns, then keeps bad faces; checked below instead
            if ext == ".obj":
                from pytorch3d.io import load_objs_as_meshes

                mesh = load_objs_as_meshes([str(path)], device=ctx.device)
            elif ext == ".ply":
                from pytorch3d.io import IO

                mesh = IO().load_mesh(str(path), device=ctx.device)
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
            data = np.load(str(path))
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
    try:
        with Image.open(path) as im:
            mode = {"rgb": "RGB", "rgba": "RGBA", "grey": "L"}[channels]
            array = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        ctx.fail("file", f"cannot read {file!r} as an image: {exc}")
    if array.ndim == 2:
        array = array[..., None]
    return torch.as_tensor(array, device=ctx.device)[None]
