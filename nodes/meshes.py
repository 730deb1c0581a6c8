"""Making and reshaping meshes: primitives, normalisation, batching, colours, joining, sampling points."""
from __future__ import annotations

import torch

from nodegraph.spec import Bool, Choice, Color, Float, Input, Int, Output, node

from ._common import fit_scales, unit_fit


def _vertex_textures(meshes, color):
    from pytorch3d.renderer import TexturesVertex

    rgb = torch.tensor(color, dtype=torch.float32, device=meshes.device)
    return TexturesVertex([rgb.expand(v.shape[0], 3).clone() for v in meshes.verts_list()])


def _textured(template: str):
    """An export form: ``template`` makes the mesh, then it gets its constant vertex colours (``_vertex_textures``,
    copied into the script) as the node sets them."""
    def form(x) -> dict:
        x.helper(_vertex_textures)
        return x.template(template + "\n{out}.textures = _vertex_textures({out}, {color})")
    return form


def _cube_export(x) -> None:
    x.imports("import trimesh", "from pytorch3d.structures import Meshes")
    x.helper(_vertex_textures)
    box, out = x.name("box"), x.out()
    x.line(f"{box} = trimesh.creation.box(extents=({x.params['size']},) * 3)",
           f"{out} = Meshes([torch.as_tensor({box}.vertices, dtype=torch.float32, device=device)],",
           f"              [torch.as_tensor({box}.faces, dtype=torch.int64, device=device)])",
           f"{out}.textures = _vertex_textures({out}, {x.params['color']})")


def _normalize_export(x) -> str:
    """Centre at the mean vertex, divide by the largest norm (or coordinate): ``fit_scales``, as the node."""
    mesh, centers, scales = x.inputs["mesh"], x.name("centers"), x.name("scales")
    x.line(f"{centers}, {scales} = {x.helper(fit_scales)}({mesh}.verts_list(), {x.params['fit']})")
    return (f"{mesh}.offset_verts(-{centers}.repeat_interleave({mesh}.num_verts_per_mesh(), dim=0))"
            f".scale_verts(1.0 / {scales})")


def _join_export(x) -> str:
    x.imports("from pytorch3d.structures import join_meshes_as_batch, join_meshes_as_scene")
    joined = f"join_meshes_as_batch([{', '.join(x.inputs['meshes'])}])"
    return f"join_meshes_as_scene({joined}) if {x.params['mode']} == 'scene' else {joined}"


def _sample_points_export(x) -> dict:
    """``sample_points_from_meshes`` with normals (and texture colours), as a Pointclouds."""
    x.imports("from pytorch3d.ops import sample_points_from_meshes", "from pytorch3d.structures import Pointclouds")
    mesh, n = x.inputs["mesh"], x.params["num_samples"]
    pts, normals = x.name("xyz"), x.out("normals")
    if x.fixed("with_colors"):
        colors = x.name("rgb")
        x.line(f"{pts}, {normals}, {colors} = sample_points_from_meshes({mesh}, {n}, return_normals=True, "
               "return_textures=True)")
        cloud = f"Pointclouds(points={pts}, normals={normals}, features={colors})"
    else:
        x.line(f"{pts}, {normals} = sample_points_from_meshes({mesh}, {n}, return_normals=True)")
        cloud = f"Pointclouds(points={pts}, normals={normals})"
    return {"points": cloud, "normals": normals}


@node(
    category="meshes",
    params=[Int("level", 2, "subdivision level: 0 is an icosahedron, each level has 4x the faces", min=0, max=7),
            Color("color", (1.0, 1.0, 1.0), "constant vertex colour")],
    outputs=[Output("mesh", "Meshes")],
    export=_textured("from pytorch3d.utils import ico_sphere\n{out} = ico_sphere({level}, device)"),
)
def IcoSphere(ctx, level, color):
    """A unit sphere made by subdividing an icosahedron ``level`` times (``pytorch3d.utils.ico_sphere``)."""
    from pytorch3d.utils import ico_sphere

    mesh = ico_sphere(level, ctx.device)
    mesh.textures = _vertex_textures(mesh, color)
    return mesh


@node(
    category="meshes",
    params=[Float("size", 2.0, "edge length", min=1e-6), Color("color", (1.0, 1.0, 1.0), "constant vertex colour")],
    outputs=[Output("mesh", "Meshes")],
    export=_cube_export,
)
def Cube(ctx, size, color):
    """An axis-aligned cube centred at the origin (8 vertices, 12 triangles, outward faces)."""
    import trimesh
    from pytorch3d.structures import Meshes

    box = trimesh.creation.box(extents=(size, size, size))
    verts = torch.as_tensor(box.vertices, dtype=torch.float32, device=ctx.device)
    faces = torch.as_tensor(box.faces, dtype=torch.int64, device=ctx.device)
    mesh = Meshes([verts], [faces])
    mesh.textures = _vertex_textures(mesh, color)
    return mesh


@node(
    category="meshes",
    params=[Float("r", 0.25, "tube radius", min=1e-6), Float("R", 0.75, "distance from centre to tube centre",
                                                            min=1e-6),
            Int("sides", 32, "segments around the tube", min=3, max=1024),
            Int("rings", 32, "segments around the ring", min=3, max=1024),
            Color("color", (1.0, 1.0, 1.0), "constant vertex colour")],
    outputs=[Output("mesh", "Meshes")],
    export=_textured("from pytorch3d.utils import torus\n{out} = torus({r}, {R}, {sides}, {rings}, device=device)"),
)
def Torus(ctx, r, R, sides, rings, color):
    """A torus around the z axis (``pytorch3d.utils.torus``)."""
    from pytorch3d.utils import torus

    mesh = torus(r, R, sides, rings, device=ctx.device)
    mesh.textures = _vertex_textures(mesh, color)
    return mesh


@node(
    category="meshes",
    inputs=[Input("mesh", "Meshes")],
    params=[Choice("fit", "sphere", "sphere: centre at the mean vertex, divide by the largest vertex norm (unit "
                                    "sphere); cube: divide by the largest coordinate (unit cube)",
                   choices=("sphere", "cube"))],
    outputs=[Output("mesh", "Meshes")],
    export=_normalize_export,
)
def NormalizeMesh(ctx, mesh, fit):
    """Centre each mesh at its mean vertex and scale it into the unit sphere (or cube), as the tutorials do."""
    centers, scales = unit_fit(ctx, "mesh", mesh.verts_list(), fit,
                               "a mesh has all its vertices at one point; it cannot be scaled")
    offsets = -centers.repeat_interleave(mesh.num_verts_per_mesh(), dim=0)
    return mesh.offset_verts(offsets).scale_verts(1.0 / scales)


@node(
    category="meshes",
    inputs=[Input("mesh", "Meshes")],
    params=[Int("n", 20, "copies: a batch of one mesh becomes a batch of n (one per camera view)", min=1,
                max=4096)],
    outputs=[Output("mesh", "Meshes")],
    export="{out} = {mesh}.extend({n})",
)
def ExtendMesh(ctx, mesh, n):
    """Repeat every mesh of the batch ``n`` times (``Meshes.extend``), e.g. to render one mesh from n views."""
    return mesh.extend(n)


@node(
    category="meshes",
    inputs=[Input("mesh", "Meshes")],
    params=[Color("color", (1.0, 1.0, 1.0), "RGB colour of every vertex")],
    outputs=[Output("mesh", "Meshes", "the same geometry with TexturesVertex")],
    export=_textured("{out} = {mesh}.clone()"),
)
def VertexColors(ctx, mesh, color):
    """Give every vertex one constant colour (``TexturesVertex``), replacing any texture."""
    out = mesh.clone()
    out.textures = _vertex_textures(out, color)
    return out


@node(
    category="meshes",
    inputs=[Input("meshes", "Meshes", "meshes to join, in link order", multiple=True)],
    params=[Choice("mode", "batch", "batch: one heterogeneous batch (one item per mesh); scene: one mesh made of "
                                    "them all", choices=("batch", "scene"))],
    outputs=[Output("mesh", "Meshes")],
    export=_join_export,
)
def JoinMeshes(ctx, meshes, mode):
    """Join meshes of different sizes into one heterogeneous batch (or merge them into one scene mesh)."""
    from pytorch3d.structures import join_meshes_as_batch, join_meshes_as_scene

    if not meshes:
        ctx.fail("meshes", "connect at least one mesh")
    kinds = {type(m.textures).__name__ if m.textures is not None else None for m in meshes}
    if len(kinds) > 1:
        ctx.fail("meshes", f"all meshes need the same kind of texture to be joined, got {sorted(map(str, kinds))};"
                           " use VertexColors on each to make them match")
    try:
        joined = join_meshes_as_batch(meshes)
        return join_meshes_as_scene(joined) if mode == "scene" else joined
    except ValueError as exc:
        ctx.fail("meshes", str(exc))


@node(
    category="meshes",
    stochastic=True,
    inputs=[Input("mesh", "Meshes")],
    params=[Int("num_samples", 10000, "points per mesh", min=1, max=100_000_000),
            Bool("with_colors", True, "sample colours from the mesh texture as point features")],
    outputs=[Output("points", "Pointclouds"), Output("normals", "Tensor", "(B, N, 3) surface normals")],
    export=_sample_points_export,
)
def SamplePoints(ctx, mesh, num_samples, with_colors):
    """Sample points uniformly on the surface (``sample_points_from_meshes``), with texture colours if asked."""
    from pytorch3d.ops import sample_points_from_meshes
    from pytorch3d.structures import Pointclouds

    if with_colors and mesh.textures is None:
        ctx.fail("with_colors", "the mesh has no texture to sample colours from; untick with_colors or add "
                                "VertexColors")
    if with_colors:
        points, normals, colors = sample_points_from_meshes(mesh, num_samples, return_normals=True,
                                                            return_textures=True)
        return {"points": Pointclouds(points=points, normals=normals, features=colors), "normals": normals}
    points, normals = sample_points_from_meshes(mesh, num_samples, return_normals=True)
    return {"points": Pointclouds(points=points, normals=normals), "normals": normals}


@node(
    category="meshes",
    inputs=[Input("mesh", "Meshes", "a mesh with any texture (UV image, atlas or vertex colours)")],
    outputs=[Output("mesh", "Meshes", "the same geometry with TexturesVertex")],
    export=lambda x: f"{x.helper(bake_vertex_colors)}({x.inputs['mesh']})",
)
def TextureToVertexColors(ctx, mesh):
    """Bake a texture into vertex colours: each vertex gets the mean texture colour of its face corners.

    Gouraud shading and the 3D preview need vertex colours; this lets a UV-textured mesh (the cow) use them.
    """
    if mesh.textures is None:
        ctx.fail("mesh", "has no texture to bake; use VertexColors for a constant colour")
    return bake_vertex_colors(mesh)


def bake_vertex_colors(mesh):
    """A copy of ``mesh`` whose TexturesVertex are the mean texture colour of each vertex's face corners."""
    from pytorch3d.renderer import TexturesVertex

    corner_colors = mesh.textures.faces_verts_textures_packed()  # (F, 3, C)
    faces = mesh.faces_packed().reshape(-1)
    channels = corner_colors.shape[-1]
    total = int(mesh.num_verts_per_mesh().sum())
    sums = corner_colors.new_zeros(total, channels).index_add_(0, faces, corner_colors.reshape(-1, channels))
    counts = corner_colors.new_zeros(total).index_add_(0, faces, corner_colors.new_ones(faces.shape[0]))
    colors = sums / counts.clamp(min=1)[:, None]
    out = mesh.clone()
    out.textures = TexturesVertex(list(colors.split(mesh.num_verts_per_mesh().tolist())))
    return out
