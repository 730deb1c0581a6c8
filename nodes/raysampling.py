"""Ray sampling: raysamplers and the ray bundles they cast from cameras.

A raysampler node outputs a PyTorch3D raysampler object; ``SampleRays`` applies it to cameras and gives the
``RayBundle`` (origins, directions, lengths, xys). The ray renderers (:mod:`nodegraph.nodes.rendering`) take
the raysampler itself. ``MonteCarloRaysampler`` is stochastic: inside a training loop it draws new rays every
iteration. ``PreviewRayBundle`` (:mod:`nodegraph.nodes.preview`) shows a bundle in 3D.
"""
from __future__ import annotations

from pytorch3d.renderer import MonteCarloRaysampler as _MonteCarloRaysampler
from pytorch3d.renderer import NDCMultinomialRaysampler as _NDCMultinomialRaysampler
from pytorch3d.renderer import ray_bundle_to_ray_points

from nodegraph.spec import Float, Input, Int, Output, node

from ._rays import MAX_PTS_PER_RAY, check_ray_memory

MAX_IMAGE_SIDE = 8192

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
    export="""
        from pytorch3d.renderer import NDCMultinomialRaysampler
        {out} = NDCMultinomialRaysampler(image_width={image_width}, image_height={image_height}, n_pts_per_ray={n_pts_per_ray}, min_depth={min_depth}, max_depth={max_depth}).to(device)
    """,
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
    export="""
        from pytorch3d.renderer import MonteCarloRaysampler
        {out} = MonteCarloRaysampler(min_x=-{extent}, max_x={extent}, min_y=-{extent}, max_y={extent}, n_rays_per_image={n_rays_per_image}, n_pts_per_ray={n_pts_per_ray}, min_depth={min_depth}, max_depth={max_depth})
    """,
)
def MonteCarloRaysampler(ctx, n_rays_per_image, n_pts_per_ray, min_depth, max_depth, extent):
    """Rays through uniformly random image locations (Monte-Carlo), as the NeRF tutorial trains with.

    Stochastic: every call draws new locations, so inside a training loop each iteration sees other rays. Use
    ``SampleImagesAtRays`` to read the target images at the same locations (the bundle's ``xys``).
    """
    return _MonteCarloRaysampler(min_x=-extent, max_x=extent, min_y=-extent, max_y=extent,
                                 n_rays_per_image=n_rays_per_image, n_pts_per_ray=n_pts_per_ray,
                                 min_depth=min_depth, max_depth=max_depth)


# ------------------------------------------------------------------------------------------- bundles


@node(
    category="raysampling",
    inputs=[Input("raysampler", "Raysampler"), Input("cameras", "Cameras")],
    outputs=[Output("ray_bundle", "RayBundle", "origins, directions (B, ..., 3), lengths (B, ..., n_pts), "
                                               "xys (B, ..., 2)")],
    export="{out} = {raysampler}(cameras={cameras})",
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
    export="from pytorch3d.renderer import ray_bundle_to_ray_points\n{out} = ray_bundle_to_ray_points({ray_bundle})",
)
def RayBundleToRayPoints(ctx, ray_bundle):
    """The 3D points along every ray: ``origins + lengths * directions`` (PyTorch3D ``ray_bundle_to_ray_points``)."""
    return ray_bundle_to_ray_points(ray_bundle)
