"""Surfaces out of fields: marching cubes (``pytorch3d.ops.marching_cubes``) turns a density grid into a mesh.

The grid is either a ``Volumes`` batch (its densities, with the volume's own world placement) or an implicit
function (a NeRF, an analytic SDF field) sampled on a cube of ``resolution``^3 points. The mesh can then be
saved (``SaveMesh``: OBJ, PLY, GLB) or rendered like any other.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from pytorch3d.renderer import RayBundle

from nodegraph.spec import Float, Input, Int, Output, Vec3, node


def sample_field(function, resolution: int, extent: float, center, chunk: int, device,
                 between: Callable | None = None) -> torch.Tensor:
    """The field's densities on a (resolution,)^3 grid over center +- extent, indexed [z, y, x] as marching
    cubes reads a volume. Each point is a ray of length zero, so any ray-based field can be sampled;
    ``between`` runs before each chunk of ``chunk`` points. Exported scripts call this too."""
    axis = torch.linspace(-extent, extent, resolution, device=device)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    points = torch.stack([x, y, z], dim=-1).reshape(-1, 3) + torch.tensor(center, device=device)
    parts = []
    with torch.no_grad():
        for start in range(0, points.shape[0], chunk):
            if between is not None:
                between()
            origins = points[start:start + chunk][None]
            n = origins.shape[1]
            bundle = RayBundle(origins=origins, directions=origins.new_tensor([0.0, 0.0, 1.0]).expand(1, n, 3),
                               lengths=origins.new_zeros(1, n, 1), xys=origins.new_zeros(1, n, 2))
            densities, _ = function(ray_bundle=bundle)
            parts.append(densities.reshape(-1))
    return torch.cat(parts).reshape(1, resolution, resolution, resolution)


def isosurface(grid: torch.Tensor, isolevel: float, volumes, extent: float, center, device):
    """Meshes of the ``isolevel`` surface of each density grid of ``grid`` (B, D, H, W): placed by the volumes'
    ``local_to_world_coords``, or (``volumes`` None: a sampled field) on the cube center +- extent.
    Exported scripts call this too."""
    from pytorch3d.ops.marching_cubes import marching_cubes
    from pytorch3d.structures import Meshes

    verts, faces = marching_cubes(grid.float(), isolevel, return_local_coords=True)
    if volumes is not None:
        verts = [volumes.local_to_world_coords(v[None].to(grid.device))[0] if len(volumes) == 1 else
                 volumes[i].local_to_world_coords(v[None].to(grid.device))[0] for i, v in enumerate(verts)]
    else:
        offset = torch.tensor(center, device=device)
        verts = [v.to(device) * extent + offset for v in verts]
    return Meshes(verts=[v.float() for v in verts], faces=[f.to(device) for f in faces])


def _marching_cubes_export(x) -> dict:
    p, volumes, function = x.params, x.inputs["volumes"], x.inputs["function"]
    if (volumes is None) == (function is None):
        x.fail("connect exactly one of volumes and function", "volumes")
    grid = x.name("grid")
    if volumes is not None:
        x.line(f"{grid} = {volumes}.densities()[:, 0].detach()")
    else:
        x.line(f"{grid} = {x.helper(sample_field)}({function}, {p['resolution']}, {p['extent']}, {p['center']}, "
               f"{p['chunk_size']}, device)")
    x.line(f"if not {grid}.min() < {p['isolevel']} < {grid}.max():",
           f"    raise SystemExit(f'{x.node_id}: isolevel {{{p['isolevel']}}} is outside the densities "
           f"({{{grid}.min():.4g}} .. {{{grid}.max():.4g}}): no surface')")
    return f"{x.helper(isosurface)}({grid}, {p['isolevel']}, {volumes}, {p['extent']}, {p['center']}, device)"


@node(
    category="surfaces",
    inputs=[Input("volumes", "Volumes", "densities to extract from (each volume of the batch gives a mesh)",
                  optional=True),
            Input("function", "ImplicitFunction", "or a field sampled on a grid (a NeRF, SphereField ...)",
                  optional=True)],
    params=[
        Float("isolevel", 0.5, "the density the surface passes through (0.5: an SDF field's zero level)"),
        Int("resolution", 64, "grid points per side when sampling a function", min=2, max=512),
        Float("extent", 1.5, "a function is sampled on the cube center +- extent (world units)", min=1e-6),
        Vec3("center", (0.0, 0.0, 0.0), "centre of the sampled cube"),
        Int("chunk_size", 65536, "points per call of the function", min=1),
    ],
    outputs=[Output("mesh", "Meshes", "the isosurface in world coordinates, one mesh per volume")],
    export=lambda x: _marching_cubes_export(x),
)
def MarchingCubes(ctx, volumes, function, isolevel, resolution, extent, center, chunk_size):
    """Extract the isosurface of a density grid as a triangle mesh (``pytorch3d.ops.marching_cubes``).

    From ``volumes`` the grid is the volume's densities and vertices are placed with its
    ``local_to_world_coords``; from ``function`` the field is sampled on a cube of ``resolution``^3 points.
    """
    if (volumes is None) == (function is None):
        ctx.fail("volumes", "connect exactly one of volumes and function")
    if volumes is not None:
        grid = volumes.densities()[:, 0].detach()
    else:
        if not callable(function):
            ctx.fail("function", f"expects a callable field, got {type(function).__name__}")
        grid = sample_field(function, resolution, extent, center, chunk_size, ctx.device, ctx.check_cancelled)
    lo, hi = float(grid.min()), float(grid.max())
    if not lo < isolevel < hi:
        field = "volumes" if volumes is not None else "function"
        ctx.fail("isolevel", f"{isolevel} is outside the {field}' densities ({lo:.4g} .. {hi:.4g}): no surface")
    return isosurface(grid, isolevel, volumes, extent, center, ctx.device)
