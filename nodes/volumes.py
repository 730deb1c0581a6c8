"""Volumes: voxel grids of densities and features, sampled along rays, filled from point clouds, sliced.

``Volumes`` builds a batch from tensors or fills a new one; ``VoxelGrid`` is the learnable grid of the volume
tutorial (log-space densities and colours through a sigmoid); ``VolumeSampler`` reads a volume at a ray bundle's
points; ``AddPointcloudsToVolumes`` splats coloured points into a grid; ``VolumeSlices`` shows a grid as images.
Every grid is checked against the device's memory before it is allocated.
"""
from __future__ import annotations

import torch
from pytorch3d.ops import add_pointclouds_to_volumes
from pytorch3d.structures import Volumes as _Volumes

from nodegraph.memory import ensure_fits
from nodegraph.spec import Bool, Choice, Float, Floats, Input, Int, Output, Vec3, node

from ._rays import VolumeField, match_batch, shared_volumes

MAX_RESOLUTION = 2048

# -------------------------------------------------------------------------------------------- helpers


def _grid_list(ctx, field: str, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Connected tensors -> a list of (C, D, H, W) grids, one per volume."""
    grids: list[torch.Tensor] = []
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            ctx.fail(field, f"expects tensors, got {type(t).__name__}")
        if t.dim() == 5:
            grids += list(t.unbind(0))
        elif t.dim() == 4:
            grids.append(t)
        elif t.dim() == 3:
            grids.append(t[None])
        else:
            ctx.fail(field, f"a grid is (B, C, D, H, W), (C, D, H, W) or (D, H, W); got shape {list(t.shape)}")
    return [g.to(ctx.device, torch.float32) for g in grids]


def as_grids(tensors: list[torch.Tensor], device) -> list[torch.Tensor]:
    """``_grid_list`` without its checks: (B, C, D, H, W), (C, D, H, W) or (D, H, W) tensors as (C, D, H, W) grids."""
    grids: list[torch.Tensor] = []
    for t in tensors:
        grids += list(t.unbind(0)) if t.dim() == 5 else [t] if t.dim() == 4 else [t[None]]
    return [g.to(device, torch.float32) for g in grids]


def _batched(grids: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """One (B, C, D, H, W) tensor when every grid has one size, else the list (a batch of mixed sizes)."""
    if len({tuple(g.shape) for g in grids}) == 1:
        return torch.stack(grids)
    return grids


def _size(g: torch.Tensor) -> str:
    return "x".join(str(s) for s in g.shape[1:])


# -------------------------------------------------------------------------------------------- export forms


def _volumes_export(x) -> str:
    """The grids as the node builds them: connected tensors, or new ones filled with the params' values."""
    x.imports("from pytorch3d.structures import Volumes")
    p, dens, feats = x.params, x.name("densities"), x.name("features")
    if x.inputs["densities"]:
        x.line(f"{dens} = {x.helper(as_grids)}([{', '.join(x.inputs['densities'])}], device)")
    else:
        sides = f"[int(r) for r in {p['resolution']}] * ({p['batch']} if len({p['resolution']}) == 1 else 1)"
        x.line(f"{dens} = [torch.full((1, s, s, s), {p['density']}, device=device) for s in {sides}]")
    if x.inputs["features"]:
        x.line(f"{feats} = {x.helper(as_grids)}([{', '.join(x.inputs['features'])}], device)")
    else:
        x.line(f"{feats} = [torch.full(({p['feature_channels']}, *d.shape[1:]), {p['feature_value']}, "
               f"device=device) for d in {dens}] if {p['feature_channels']} else None")
    batched = x.helper(_batched)
    return (f"Volumes(densities={batched}({dens}), features=None if {feats} is None else {batched}({feats}), "
            f"voxel_size={p['voxel_size']}, volume_translation=tuple(-c for c in {p['center']}))")


def _voxel_grid_export(x) -> str:
    x.imports("from pytorch3d.structures import Volumes")
    p = x.params
    size = f"({p['resolution']},) * 3"
    dens = x.param("log_densities", f"torch.full((1, *{size}), {p['init_density']}, device=device)")
    cols = x.param("log_colors", f"torch.full(({p['channels']}, *{size}), {p['init_color']}, device=device)")
    return (f"Volumes(densities=torch.sigmoid({dens})[None], features=torch.sigmoid({cols})[None], "
            f"voxel_size={p['extent']} / {p['resolution']}, volume_translation=tuple(-c for c in {p['center']}))")


def _volume_sampler_export(x) -> dict:
    dens, feats = x.out("densities"), x.out("features")
    vols = f"{x.helper(shared_volumes)}({x.inputs['volumes']}, {x.inputs['ray_bundle']}.origins.shape[0])"
    x.line(f"{dens}, {feats} = {x.helper(VolumeField)}({vols}, {x.params['sample_mode']})({x.inputs['ray_bundle']})")
    return {"densities": dens, "features": feats}


def _add_points_export(x) -> str:
    x.imports("from pytorch3d.ops import add_pointclouds_to_volumes")
    p, out = x.params, x.out()
    vols = f"{x.helper(shared_volumes)}({x.inputs['volumes']}, len({x.inputs['points']}))"
    x.line(f"{out} = add_pointclouds_to_volumes(pointclouds={x.inputs['points']}, initial_volumes={vols}.clone(), "
           f"mode={p['mode']}, min_weight={p['min_weight']})",
           f"if {p['to_opacity']}:",
           f"    {out} = {out}.update_padded((1.0 - torch.exp(-{p['density_scale']} * {out}.densities()))"
           f".clamp(0.0, 1.0), {out}.features())")
    return out


# -------------------------------------------------------------------------------------------- nodes


@node(
    category="volumes",
    inputs=[
        Input("densities", "Tensor", "(B, 1, D, H, W), or one (1, D, H, W) / (D, H, W) grid per link (sizes may "
                                     "differ); a grid filled with `density` when not connected",
              optional=True, multiple=True),
        Input("features", "Tensor", "(B, C, D, H, W) or one (C, D, H, W) grid per link, the densities' sizes; "
                                    "filled with `feature_value` when not connected", optional=True,
              multiple=True),
    ],
    params=[
        Floats("resolution", [64], "side of each generated grid in voxels; several numbers make a batch of "
                                   "volumes of different sizes, e.g. [32, 48, 64]", min_length=1, min=1,
               max=MAX_RESOLUTION),
        Int("batch", 1, "copies of the grid when `resolution` has one number", min=1, max=4096),
        Float("density", 0.0, "fill value of generated densities (opacity per sample, 0..1)", min=0.0),
        Int("feature_channels", 3, "channels of generated features (0: no features)", min=0, max=64),
        Float("feature_value", 0.0, "fill value of generated features"),
        Float("voxel_size", 0.1, "edge length of a voxel", min=1e-9, unit="world units"),
        Vec3("center", (0.0, 0.0, 0.0), "world position of the volume's centre (PyTorch3D's volume_translation is "
                                        "its negative)"),
    ],
    outputs=[Output("volumes", "Volumes")],
    export=_volumes_export,
)
def Volumes(ctx, densities, features, resolution, batch, density, feature_channels, feature_value, voxel_size,
            center):
    """A batch of voxel grids (PyTorch3D ``Volumes``): densities, optional features, voxel size and position.

    Connect density (and feature) tensors, or leave them unconnected to fill new grids: ``resolution`` [64] with
    ``batch`` 10 is the book's batch of ten 64^3 volumes; [32, 64] gives two volumes of different sizes.
    """
    if densities:
        dens = _grid_list(ctx, "densities", densities)
    else:
        sides = [int(r) for r in resolution] * (batch if len(resolution) == 1 else 1)
        voxels = sum(s ** 3 for s in sides)
        ensure_fits(ctx, "resolution", voxels * (1 + (0 if features else feature_channels)) * 4,
                    f"{len(sides)} grid(s) of {'/'.join(str(s) for s in sorted(set(sides)))}^3 voxels")
        dens = [torch.full((1, s, s, s), density, device=ctx.device) for s in sides]
    if any(g.shape[0] != 1 for g in dens):
        ctx.fail("densities", f"a density grid has one channel, got {[g.shape[0] for g in dens]}")
    if features:
        feats = _grid_list(ctx, "features", features)
        if len(feats) != len(dens):
            ctx.fail("features", f"has {len(feats)} grids but densities has {len(dens)}")
        for i, (f, d) in enumerate(zip(feats, dens)):
            if f.shape[1:] != d.shape[1:]:
                ctx.fail("features", f"grid {i} is {_size(f)} voxels but its density grid is {_size(d)}; "
                                     f"features and densities must have the same size")
        if len({f.shape[0] for f in feats}) > 1:
            ctx.fail("features", f"every grid needs the same channels, got {[f.shape[0] for f in feats]}")
    elif feature_channels:
        feats = [torch.full((feature_channels, *d.shape[1:]), feature_value, device=ctx.device) for d in dens]
    else:
        feats = None
    return _Volumes(densities=_batched(dens), features=None if feats is None else _batched(feats),
                    voxel_size=voxel_size, volume_translation=tuple(-c for c in center))


def _voxel_grid_memory(resolution: int, channels: int) -> int:
    # per voxel and channel: the parameter, its gradient, Adam's two moments, the sigmoid and its gradient
    return resolution ** 3 * (1 + channels) * 4 * 6


@node(
    category="volumes",
    learnable=True,
    params=[
        Int("resolution", 128, "voxels along each side", min=2, max=MAX_RESOLUTION),
        Float("extent", 3.0, "side of the cube the grid spans; voxel size = extent / resolution", min=1e-6,
              unit="world units"),
        Int("channels", 3, "colour (feature) channels", min=1, max=64),
        Float("init_density", -4.0, "initial log-space density (sigmoid(-4) = 0.018: nearly empty)"),
        Float("init_color", 0.0, "initial log-space colour (sigmoid(0) = 0.5: grey)"),
        Vec3("center", (0.0, 0.0, 0.0), "world position of the grid's centre"),
    ],
    outputs=[Output("volumes", "Volumes", "a batch of one volume; renderers share it across cameras")],
    export=_voxel_grid_export,
)
def VoxelGrid(ctx, resolution, extent, channels, init_density, init_color, center):
    """A learnable voxel grid, as in PyTorch3D's "fit a volume" tutorial.

    It stores log-space densities and colours; the volume it outputs holds ``sigmoid`` of both, so densities
    stay in [0, 1] and colours in [0, 1] whatever the optimiser does. Connect it to a ``VolumeRenderer`` whose
    images feed a loss, and an ``Optimize`` node trains it.
    """
    if ctx.iteration in (None, 0):
        ensure_fits(ctx, "resolution", _voxel_grid_memory(resolution, channels),
                    f"a learnable {resolution}^3 grid with {channels} channels (with gradients and Adam state)",
                    "lower the resolution")
    size = (resolution,) * 3
    log_densities = ctx.param("log_densities", lambda: torch.full((1, *size), init_density, device=ctx.device))
    log_colors = ctx.param("log_colors", lambda: torch.full((channels, *size), init_color, device=ctx.device))
    return _Volumes(densities=torch.sigmoid(log_densities)[None], features=torch.sigmoid(log_colors)[None],
                    voxel_size=extent / resolution, volume_translation=tuple(-c for c in center))


@node(
    category="volumes",
    inputs=[Input("volumes", "Volumes", "one volume (shared by every camera) or one per camera"),
            Input("ray_bundle", "RayBundle")],
    params=[Choice("sample_mode", "bilinear", "interpolation between voxels: bilinear (trilinear in 3D) or "
                                              "nearest", choices=("bilinear", "nearest"))],
    outputs=[Output("densities", "Tensor", "(B, ..., n_pts_per_ray, 1)"),
             Output("features", "Tensor", "(B, ..., n_pts_per_ray, C)")],
    export=_volume_sampler_export,
)
def VolumeSampler(ctx, volumes, ray_bundle, sample_mode):
    """Read the volumes' densities and features at every point of every ray (PyTorch3D ``VolumeSampler``).

    Points outside a volume read zero. With 10 cameras, a 64 x 64 grid sampler of 50 points and 64^3 volumes,
    densities are (10, 64, 64, 50, 1). A batch of volumes of different sizes is read one volume per camera.
    """
    vols = match_batch(ctx, "volumes", volumes, ray_bundle.origins.shape[0])
    if vols.features() is None:
        ctx.fail("volumes", "has no features to sample; give the Volumes node feature channels")
    dens, feats = VolumeField(vols, sample_mode)(ray_bundle)
    return {"densities": dens, "features": feats}


@node(
    category="volumes",
    inputs=[Input("points", "Pointclouds", "points with features (e.g. colours from SamplePoints)"),
            Input("volumes", "Volumes", "the grid to add into (its features need the points' channels)")],
    params=[
        Choice("mode", "trilinear", "trilinear: each point votes into its 8 neighbour voxels (differentiable); "
                                    "nearest: into the voxel it falls in", choices=("trilinear", "nearest")),
        Float("min_weight", 1e-4, "voxels with less total weight keep their initial features", min=0.0),
        Bool("to_opacity", True, "turn accumulated weights w into opacities 1 - exp(-density_scale * w) in [0, 1], "
                                 "ready for raymarching; off: raw accumulated weights"),
        Float("density_scale", 1.0, "how quickly accumulated weight turns opaque", min=0.0),
    ],
    outputs=[Output("volumes", "Volumes")],
    aliases=("add_pointclouds_to_volumes",),
    export=_add_points_export,
)
def AddPointcloudsToVolumes(ctx, points, volumes, mode, min_weight, to_opacity, density_scale):
    """Splat point clouds into voxel grids (PyTorch3D ``add_pointclouds_to_volumes``).

    Each voxel's features become the weighted average of the points that vote into it, and its density grows
    with their total weight. The result is a copy; the input volumes are unchanged.
    """
    feats = points.features_padded()
    if feats is None:
        ctx.fail("points", "has no features; sample points with colours (SamplePoints with_colors)")
    vols = match_batch(ctx, "volumes", volumes, len(points))
    if vols.features() is None:
        ctx.fail("volumes", "has no features to hold the points' colours; give the Volumes node feature channels")
    if vols.features().shape[1] != feats.shape[-1]:
        ctx.fail("volumes", f"features have {vols.features().shape[1]} channels but the points have "
                            f"{feats.shape[-1]}")
    # add_pointclouds_to_volumes writes into initial_volumes: give it a copy, the input may be a cached output
    out = add_pointclouds_to_volumes(pointclouds=points, initial_volumes=vols.clone(), mode=mode,
                                     min_weight=min_weight)
    if to_opacity:
        out = out.update_padded((1.0 - torch.exp(-density_scale * out.densities())).clamp(0.0, 1.0),
                                out.features())
    return out


@node(
    category="volumes",
    inputs=[Input("volumes", "Volumes")],
    params=[
        Choice("axis", "z", "slice across this world axis", choices=("x", "y", "z")),
        Int("count", 8, "how many evenly spaced slices", min=1, max=512),
        Choice("show", "features", "densities (grey), features (colour, first 3 channels) or features x density",
               choices=("densities", "features", "premultiplied")),
        Int("index", 0, "which volume of the batch", min=0),
    ],
    outputs=[Output("images", "Images", "(count, H, W, C): one image per slice; z and x slices have +y up, "
                                        "y slices rows along z")],
    export=lambda x: f"{x.helper(slice_volume)}({x.inputs['volumes']}, {x.params['axis']}, {x.params['count']}, {x.params['show']}, {x.params['index']})",
)
def VolumeSlices(ctx, volumes, axis, count, show, index):
    """Cut a volume into evenly spaced slices and show them as images (a quick look inside a voxel grid)."""
    if index >= len(volumes):
        ctx.fail("index", f"the batch has {len(volumes)} volume(s)")
    if show != "densities" and volumes.features() is None:
        ctx.fail("show", "the volumes have no features; show densities")
    return slice_volume(volumes, axis, count, show, index)


def slice_volume(volumes, axis: str, count: int, show: str, index: int) -> torch.Tensor:
    """``count`` evenly spaced slices of volume ``index`` as (N, H, W, C) images (VolumeSlices, unchecked)."""
    dens = volumes.densities_list()[index].detach()  # (1, D, H, W): D is z, H is y, W is x
    feats = volumes.features_list()[index].detach() if volumes.features() is not None else None
    grid = dens if show == "densities" else feats[:3] * (dens if show == "premultiplied" else 1.0)
    if grid.shape[0] == 2:
        grid = grid[:1]
    dim = {"z": 1, "y": 2, "x": 3}[axis]
    n = grid.shape[dim]
    # slice indices as Python ints, computed on the host (no device round trip)
    picks = torch.linspace(0, n - 1, min(count, n), device="cpu").round().long().tolist()
    stack = torch.stack([grid.select(dim, i) for i in picks])  # (N, C, a, b)
    if axis == "z":
        images = stack.permute(0, 2, 3, 1).flip(1)  # (N, y, x, C), +y up
    elif axis == "x":
        images = stack.permute(0, 3, 2, 1).flip(1)  # (N, y, z, C), +y up
    else:
        images = stack.permute(0, 2, 3, 1)  # (N, z, x, C)
    return images.clamp(0, 1).float()
