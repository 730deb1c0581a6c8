"""Sinks that write files into the run's output folder: images, animations, meshes, point clouds, tensors.

Every file goes through ``ctx.output_path``, so nothing is written outside the run's ``--out`` folder. Outside a
training loop a save node runs after training, so it writes the trained values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nodegraph.spec import Bool, Choice, File, Float, Input, Int, node

from ._common import check_images, grid, to_channels


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> (H, W) or (H, W, C) uint8 for PIL."""
    x = torch.nan_to_num(image.detach().float(), 0.0).clamp(0, 1)
    array = (x * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def save_png(images: torch.Tensor, path, cols: int = 0) -> None:
    """Write a (B, H, W, C) batch as one PNG grid (what SaveImage and the preview dumps write)."""
    Image.fromarray(to_uint8(grid(images, cols)[0])).save(path)


def rgb_unless(images: torch.Tensor, alpha: bool) -> torch.Tensor:
    """The images as RGB unless ``alpha`` keeps their alpha channel (the tutorials plot RGB)."""
    return to_channels(images, 3) if not alpha and images.shape[-1] == 4 else images


def _save_image_export(x) -> None:
    """One grid PNG, or numbered PNGs, written with the node's own helpers (so the pixels are the same)."""
    p, images = x.params, x.name("images")
    x.line(f"{images} = {x.helper(rgb_unless, needs=(to_channels,))}({x.inputs['images']}, {p['alpha']})")
    if x.fixed("mode") == "grid":
        save = x.helper(save_png, imports=("from PIL import Image",), needs=(to_channels, grid, to_uint8))
        x.line(f"{save}({images}, {x.output_path(p['filename'])}, {p['cols']})")
        return
    x.imports("import os", "from PIL import Image")
    stem, ext = x.name("stem"), x.name("ext")
    name = f'f"{{{stem}}}_{{k:03d}}{{{ext}}}"'
    x.line(f"{stem}, {ext} = os.path.splitext({p['filename']})",
           f"for k in range({images}.shape[0]):",
           f"    Image.fromarray({x.helper(to_uint8)}({images}[k])).save({x.output_path(name)})")


@node(
    category="save",
    export=_save_image_export,
    inputs=[Input("images", "Images")],
    params=[
        File("filename", "render.png", "PNG path inside the output folder", extensions=(".png",), must_exist=False),
        Choice("mode", "grid", "grid: one PNG laying out the batch; numbered: one PNG per image (name_000.png ...)",
               choices=("grid", "numbered")),
        Int("cols", 0, "grid columns; 0: about square", min=0, max=4096),
        Bool("alpha", False, "keep the alpha channel (transparent background); off: RGB as the tutorials plot"),
    ],
)
def SaveImage(ctx, images, filename, mode, cols, alpha):
    """Write images as PNG: a batch as one grid, or as numbered files."""
    check_images(ctx, "images", images)
    images = rgb_unless(images, alpha)
    if mode == "grid":
        save_png(images, ctx.output_path(filename), cols)
    else:
        stem = Path(filename)
        for i in range(images.shape[0]):
            name = str(stem.with_name(f"{stem.stem}_{i:03d}{stem.suffix}"))
            Image.fromarray(to_uint8(images[i])).save(ctx.output_path(name))
    ctx.preview_image(images)


@node(
    category="save",
    inputs=[Input("images", "Images", "the frames, in batch order")],
    params=[
        File("filename", "animation.gif", "GIF path inside the output folder", extensions=(".gif",),
             must_exist=False),
        Float("fps", 10.0, "frames per second", min=0.1, max=100.0),
        Bool("loop", True, "repeat forever"),
    ],
    export=lambda x: _save_animation_export(x),
)
def SaveAnimation(ctx, images, filename, fps, loop):
    """Write a batch of frames as an animated GIF (e.g. a turntable or a training progression)."""
    check_images(ctx, "images", images)
    frames = [Image.fromarray(to_uint8(to_channels(f[None], 3)[0])) for f in images]
    kwargs = {"loop": 0} if loop else {}
    frames[0].save(ctx.output_path(filename), save_all=True, append_images=frames[1:],
                   duration=max(1, round(1000 / fps)), **kwargs)
    ctx.preview_image(images[:1])


def _save_animation_export(x) -> None:
    x.imports("from PIL import Image")
    p, frames = x.params, x.name("frames")
    x.line(f"{frames} = [Image.fromarray({x.helper(to_uint8)}({x.helper(to_channels)}(f[None], 3)[0])) "
           f"for f in {x.inputs['images']}]",
           f"{frames}[0].save({x.output_path(p['filename'])}, save_all=True, append_images={frames}[1:],",
           f"    duration=max(1, round(1000 / {p['fps']})), **({{'loop': 0}} if {p['loop']} else {{}}))")


def _save_mesh_export(x) -> None:
    """The first mesh, detached: OBJ (with its UV texture), PLY or GLB, by the file name's extension."""
    first, path, p = x.name("first"), x.name("path"), x.params
    x.line(f"{path} = {x.output_path(p['filename'])}", f"{first} = {x.inputs['mesh']}[0].detach()")
    ext = Path(x.values["filename"]).suffix.lower()
    if ext == ".obj":
        x.imports("from pytorch3d.io import save_obj", "from pytorch3d.renderer import TexturesUV")
        tex = x.name("tex")
        x.line(f"{tex} = {first}.textures",
               f"if isinstance({tex}, TexturesUV):",
               f"    save_obj({path}, {first}.verts_packed(), {first}.faces_packed(), "
               f"verts_uvs={tex}.verts_uvs_list()[0],",
               f"             faces_uvs={tex}.faces_uvs_list()[0], "
               f"texture_map={tex}.maps_padded()[0].detach().clamp(0, 1))",
               "else:",
               f"    save_obj({path}, {first}.verts_packed(), {first}.faces_packed())")
    elif ext == ".ply":
        x.imports("from pytorch3d.io import IO")
        x.line(f"IO().save_mesh({first}, {path})")
    else:
        x.line(f"{x.helper(_save_glb)}({path}, {first})")


def _save_points_export(x) -> None:
    x.imports("from pytorch3d.io import IO")
    x.line(f"IO().save_pointcloud({x.inputs['points']}[0].detach(), {x.output_path(x.params['filename'])})")


def _save_glb(path: Path, mesh) -> None:
    """Write GLB through trimesh (PyTorch3D's GLB writer fails with current numpy) with the mesh's vertex normals,
    its TexturesUV as a base-colour texture or its vertex colours. A GLB has one UV per vertex, so vertices on a
    UV seam are split; the stored normals keep their shading what it was."""
    import trimesh

    verts, faces = mesh.verts_packed(), mesh.faces_packed()
    normals = mesh.verts_normals_packed()
    tex = mesh.textures
    kind = type(tex).__name__ if tex is not None else None
    visual = None
    if kind == "TexturesUV":
        corners = torch.stack([faces.reshape(-1), tex.faces_uvs_list()[0].reshape(-1)], dim=1)
        pairs, inverse = torch.unique(corners, dim=0, return_inverse=True)
        verts, normals, faces = verts[pairs[:, 0]], normals[pairs[:, 0]], inverse.reshape(-1, 3)
        uvs = tex.verts_uvs_list()[0][pairs[:, 1]].detach().cpu().numpy()
        image = Image.fromarray(to_uint8(tex.maps_padded()[0]))
        visual = trimesh.visual.TextureVisuals(uv=uvs, material=trimesh.visual.material.PBRMaterial(
            baseColorTexture=image))
    elif kind == "TexturesVertex":
        colors = (tex.verts_features_list()[0][:, :3].detach().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        visual = trimesh.visual.ColorVisuals(vertex_colors=colors)
    out = trimesh.Trimesh(verts.detach().cpu().numpy(), faces.detach().cpu().numpy(),
                          vertex_normals=normals.detach().cpu().numpy(), visual=visual, process=False)
    out.export(str(path), include_normals=True)


@node(
    category="save",
    inputs=[Input("mesh", "Meshes", "the first mesh of the batch is written")],
    params=[File("filename", "mesh.obj", "OBJ (with UV texture when it has one), PLY or GLB, inside the output "
                                         "folder", extensions=(".obj", ".ply", ".glb"), must_exist=False)],
    export=lambda x: _save_mesh_export(x),
)
def SaveMesh(ctx, mesh, filename):
    """Write the first mesh of a batch to OBJ, PLY or GLB (UV texture kept in OBJ and GLB, vertex colours in PLY and
    GLB)."""
    path = ctx.output_path(filename)
    first = mesh[0].detach()  # a trained mesh still carries its autograd graph
    ext = path.suffix.lower()
    if ext == ".obj":
        from pytorch3d.io import save_obj

        tex = first.textures
        if tex is not None and type(tex).__name__ == "TexturesUV":
            save_obj(path, first.verts_packed(), first.faces_packed(), verts_uvs=tex.verts_uvs_list()[0],
                     faces_uvs=tex.faces_uvs_list()[0], texture_map=tex.maps_padded()[0].detach().clamp(0, 1))
        else:
            save_obj(path, first.verts_packed(), first.faces_packed())
    elif ext == ".ply":
        from pytorch3d.io import IO

        IO().save_mesh(first, path)
    else:
        _save_glb(path, first)
    ctx.preview_mesh(first)


@node(
    category="save",
    inputs=[Input("points", "Pointclouds", "the first cloud of the batch is written")],
    params=[File("filename", "points.ply", "PLY inside the output folder", extensions=(".ply",),
                 must_exist=False)],
    export=lambda x: _save_points_export(x),
)
def SavePointcloud(ctx, points, filename):
    """Write the first point cloud of a batch to PLY (colours kept)."""
    from pytorch3d.io import IO

    IO().save_pointcloud(points[0].detach(), ctx.output_path(filename))
    ctx.preview_points(points[0])


def _save_tensor_export(x) -> None:
    """``torch.save`` (or ``np.save`` for a .npy name) of the detached tensor on the CPU."""
    path = x.output_path(x.params["filename"])
    value = f"{x.inputs['tensor']}.detach().cpu()"
    if Path(x.values["filename"]).suffix.lower() == ".npy":
        x.imports("import numpy as np")
        x.line(f"np.save({path}, {value}.numpy())")
    else:
        x.line(f"torch.save({value}, {path})")


@node(
    category="save",
    inputs=[Input("tensor", "Tensor", "the tensor to write (e.g. a trained camera position)")],
    params=[File("filename", "tensor.pt", "output file in the run's folder: .pt (torch) or .npy (NumPy)",
                 extensions=(".pt", ".npy"), must_exist=False)],
    export=lambda x: _save_tensor_export(x),
)
def SaveTensor(ctx, tensor, filename):
    """Write a tensor to the run's output folder as ``.pt`` (``torch.load``) or ``.npy`` (``numpy.load``).

    Outside a training loop it runs after training, so it saves the trained values.
    """
    path = ctx.output_path(filename)
    value = tensor.detach().cpu()
    if path.suffix.lower() == ".npy":
        np.save(path, value.numpy())
    else:
        torch.save(value, path)
