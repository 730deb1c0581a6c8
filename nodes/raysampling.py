"""Ray sampling: raysamplers, the ray bundles they cast from cameras, and a 3D preview of the rays.

A raysampler node outputs a PyTorch3D raysampler object; ``SampleRays`` applies it to cameras and gives the
``RayBundle`` (origins, directions, lengths, xys). The renderers in :mod:`nodes.raymarching` take the raysampler
itself. ``MonteCarloRaysampler`` is stochastic: inside a training loop it draws new rays every iteration.
"""
from __future__ import annotations

import torch
from pytorch3d.renderer import MonteCarloRaysampler as _MonteCarloRaysampler
from pytorch3d.renderer import NDCMultinomialRaysampler as _NDCMultinomialRaysampler
from pytorch3d.renderer import RayBundle, ray_bundle_to_ray_points
from pytorch3d.structures import Pointclouds

from nodegraph.memory import ensure_fits
from nodegraph.spec import Float, Input, Int, Output, node

MAX_IMAGE_SIDE = 8192
MAX_PTS_PER_RAY = 4096

def bundle_rays(bundle: RayBundle) -> tuple[int, int]:
    """(number of rays, points per ray) of a ray bundle."""
    return bundle.lengths[..., 0].numel(), bundle.lengths.shape[-1]


# ------------------------------------------------------------------------------------------- samplers


def _depth_checks(p: dict) -> list[tuple[str, str]]:
    if p["min_depth"] >= p["max_depth"]:
        return [("max_depth", f"must be greater than min_depth ({p['min_depth']}), got {p['max_depth']}")]
    return []


_DEPTHS = [
    Float("min_depth", 0.1, "depth of the first point on each ray", min=0.0, unit="world units"),
    Float("max_depth", 3.0, "depth of the last point on each ray", min=0.0, unit="world units"),
]


@node(
    category="raysampling",
    params=[
        Int("image_width", 64, "rays per image row", min=1, max=MAX_IMAGE_SIDE, unit="px"),
        Int("image_height", 64, "rays per image column", min=1, max=MAX_IMAGE_SIDE, unit="px"),
        Int("n_pts_per_ray", 50, "points sampled along each ray, evenly spaced in depth", min=1,
            max=MAX_PTS_PER_RAY),
        *_DEPTHS,
    ],
    outputs=[Output("raysampler", "Raysampler", "casts one ray through every pixel")],
    aliases=("NDCGridRaysampler",),
    checks=_depth_checks,
)
def NDCMultinomialRaysampler(ctx, image_width, image_height, n_pts_per_ray, min_depth, max_depth):
    """A ray through the centre of every pixel of an image, in PyTorch3D's NDC screen convention.

    Each ray carries ``n_pts_per_ray`` points evenly spaced between ``min_depth`` and ``max_depth``. This is the
    raysampler for full-image renders. The tutorials' older name ``NDCGridRaysampler`` finds it too.
    """
    return _NDCMultinomialRaysampler(image_width=image_width, image_height=image_height,
                                     n_pts_per_ray=n_pts_per_ray, min_depth=min_depth,
                                     max_depth=max_depth).to(ctx.device)


@node(
    category="raysampling",
    stochastic=True,
    params=[
        Int("n_rays_per_image", 750, "random rays cast per camera", min=1, max=MAX_IMAGE_SIDE ** 2),
        Int("n_pts_per_ray", 128, "points sampled along each ray, evenly spaced in depth", min=1,
            max=MAX_PTS_PER_RAY),
        *_DEPTHS,
        Float("extent", 1.0, "rays are drawn uniformly in [-extent, extent] x [-extent, extent] NDC", min=1e-6,
              max=100.0),
    ],
    outputs=[Output("raysampler", "Raysampler", "casts rays through random image locations")],
    checks=_depth_checks,
)
def MonteCarloRaysampler(ctx, n_rays_per_image, n_pts_per_ray, min_depth, max_depth, extent):
    """Rays through uniformly random image locations (Monte-Carlo), as the NeRF tutorial trains with.

    Stochastic: every call draws new locations, so inside a training loop each iteration sees other rays. Use
    ``SampleImagesAtRays`` to read the target images at the same locations (the bundle's ``xys``).
    """
    return _MonteCarloRaysampler(min_x=-extent, max_x=extent, min_y=-extent, max_y=extent,
                                 n_rays_per_image=n_rays_per_image, n_pts_per_ray=n_pts_per_ray,
                                 min_depth=min_depth, max_depth=max_depth)


def expected_rays(raysampler, n_cameras: int) -> tuple[int, int]:
    """(rays, points per ray) a raysampler will cast for ``n_cameras`` cameras, read before sampling."""
    per_image = getattr(raysampler, "_n_rays_per_image", None)
    if per_image is None:
        grid = getattr(raysampler, "_xy_grid", None)
        per_image = grid.shape[0] * grid.shape[1] if grid is not None else 0
    return n_cameras * int(per_image), int(getattr(raysampler, "_n_pts_per_ray", 0))


def check_ray_memory(ctx, field: str, raysampler, cameras, bytes_per_point: float, chunk_rays: int = 0,
                     what: str = "sampling these rays") -> None:
    """Refuse (naming ``field``) a ray count whose points would not fit: estimated before anything is cast."""
    rays, pts = expected_rays(raysampler, len(cameras))
    held = min(rays, chunk_rays) if chunk_rays else rays
    key = (ctx.node_id, str(ctx.device), rays, pts, held, bytes_per_point)
    if key in _FITTED:  # checked once per shape: a training loop does not query the device every iteration
        return
    # the bundle (origins, directions, xys, lengths) for every ray, plus per-point work for the rays held at once
    needed = rays * (8 + pts) * 4 + held * pts * bytes_per_point
    ensure_fits(ctx, field, needed, f"{what} ({rays:,} rays x {pts} points)",
                "use fewer rays or points per ray, a smaller image, or a smaller chunk_size")
    if len(_FITTED) > 4096:
        _FITTED.clear()
    _FITTED.add(key)


_FITTED: set[tuple] = set()


# ------------------------------------------------------------------------------------------- bundles


@node(
    category="raysampling",
    inputs=[Input("raysampler", "Raysampler"), Input("cameras", "Cameras")],
    outputs=[Output("ray_bundle", "RayBundle", "origins, directions (B, ..., 3), lengths (B, ..., n_pts), "
                                               "xys (B, ..., 2)")],
)
def SampleRays(ctx, raysampler, cameras):
    """Cast the raysampler's rays from each camera: the RayBundle that volume sampling and raymarching use.

    For an NDC grid sampler of W x H pixels and N cameras, origins are (N, H, W, 3) and lengths
    (N, H, W, n_pts_per_ray); for a Monte-Carlo sampler they are (N, n_rays, 3) and (N, n_rays, n_pts_per_ray).
    """
    check_ray_memory(ctx, "raysampler", raysampler, cameras, bytes_per_point=0)
    return raysampler(cameras=cameras)


@node(
    category="raysampling",
    inputs=[Input("ray_bundle", "RayBundle")],
    outputs=[Output("points", "Tensor", "(B, ..., n_pts_per_ray, 3) world coordinates")],
    aliases=("ray_bundle_to_ray_points",),
)
def RayBundleToRayPoints(ctx, ray_bundle):
    """The 3D points along every ray: ``origins + lengths * directions`` (PyTorch3D ``ray_bundle_to_ray_points``)."""
    return ray_bundle_to_ray_points(ray_bundle)


def ray_points_cloud(bundle: RayBundle, max_rays: int, max_points_per_ray: int) -> Pointclouds:
    """A point cloud of (a subset of) a bundle's ray points, coloured from blue (near) to orange (far)."""
    origins = bundle.origins.detach().reshape(-1, 3)
    directions = bundle.directions.detach().reshape(-1, 3)
    lengths = bundle.lengths.detach().reshape(origins.shape[0], -1)
    n_rays, n_pts = lengths.shape
    ray_idx = torch.linspace(0, n_rays - 1, min(n_rays, max_rays), device=origins.device).round().long()
    pt_idx = torch.linspace(0, n_pts - 1, min(n_pts, max_points_per_ray), device=origins.device).round().long()
    lens = lengths[ray_idx][:, pt_idx]
    pts = origins[ray_idx, None] + lens[..., None] * directions[ray_idx, None]
    t = torch.linspace(0.0, 1.0, len(pt_idx), device=pts.device)[None, :, None].expand(len(ray_idx), -1, 1)
    near, far = pts.new_tensor([0.2, 0.4, 1.0]), pts.new_tensor([1.0, 0.55, 0.1])
    colors = near + t * (far - near)
    return Pointclouds(points=[pts.reshape(-1, 3).float()], features=[colors.reshape(-1, 3)])


@node(
    category="preview",
    preview=True,
    inputs=[Input("ray_bundle", "RayBundle")],
    params=[
        Int("max_rays", 400, "draw at most this many rays, evenly picked", min=1, max=100_000),
        Int("max_points_per_ray", 32, "draw at most this many points of each ray", min=1, max=MAX_PTS_PER_RAY),
    ],
)
def PreviewRayBundle(ctx, ray_bundle, max_rays, max_points_per_ray):
    """Show the sampled rays as points in the 3D view, coloured blue (near) to orange (far).

    A thinned-out view of the whole batch: every camera's rays, ``max_rays`` in all. Inside a training loop it
    is a tap, shown every few steps.
    """
    ctx.preview_points(ray_points_cloud(ray_bundle, max_rays, max_points_per_ray))


def images_shape(bundle: RayBundle) -> tuple[int, ...]:
    """The (B, H, W) an image rendered from this bundle has: grids keep theirs, n random rays become (B, n, 1)."""
    spatial = tuple(bundle.lengths.shape[:-1])
    return (*spatial, 1) if len(spatial) == 2 else spatial
