"""Raymarching: turn the densities and features sampled along each ray into a pixel.

A raymarcher node outputs the PyTorch3D raymarcher object, which the ray renderers (``VolumeRenderer``,
``ImplicitRenderer`` in :mod:`nodegraph.nodes.rendering`) take; ``Raymarch`` applies one to samples directly.
"""
from __future__ import annotations

from pytorch3d.renderer import AbsorptionOnlyRaymarcher as _AbsorptionOnlyRaymarcher
from pytorch3d.renderer import EmissionAbsorptionRaymarcher as _EmissionAbsorptionRaymarcher

from nodegraph.spec import Input, Int, Output, node


@node(
    category="raymarching",
    params=[Int("surface_thickness", 1, "samples by which absorption lags density, so a hard surface still "
                                        "shows", min=1, max=64)],
    outputs=[Output("raymarcher", "Raymarcher")],
    export="from pytorch3d.renderer import EmissionAbsorptionRaymarcher\n{out} = EmissionAbsorptionRaymarcher(surface_thickness={surface_thickness})",
)
def EmissionAbsorptionRaymarcher(ctx, surface_thickness):
    """Emission-absorption raymarching: each ray's colour is its features weighted by how much light reaches
    and is absorbed at each point (``cumprod(1 - density)``); the last channel is the opacity.

    Densities must be in [0, 1]. Renders are (..., C + 1): features then opacity (the silhouette).
    """
    return _EmissionAbsorptionRaymarcher(surface_thickness=surface_thickness)


@node(category="raymarching", outputs=[Output("raymarcher", "Raymarcher")],
      export="from pytorch3d.renderer import AbsorptionOnlyRaymarcher\n{out} = AbsorptionOnlyRaymarcher()")
def AbsorptionOnlyRaymarcher(ctx):
    """Absorption-only raymarching: just the opacity of each ray, ``1 - prod(1 - density)`` (one channel).

    Features are ignored; use it for silhouettes or density-only volumes.
    """
    return _AbsorptionOnlyRaymarcher()


@node(
    category="raymarching",
    inputs=[Input("raymarcher", "Raymarcher"),
            Input("densities", "Tensor", "(B, ..., n_pts_per_ray, 1) in [0, 1]"),
            Input("features", "Tensor", "(B, ..., n_pts_per_ray, C); absorption-only marching ignores them",
                  optional=True)],
    outputs=[Output("images", "Images", "(B, H, W, C + 1) features then opacity (emission-absorption), or "
                                        "(B, H, W, 1) opacity (absorption-only); n random rays give (B, n, 1, .)")],
    export="""
        {var}_marched = {raymarcher}(rays_densities={densities}, rays_features={features})
        {out} = {var}_marched[:, :, None] if {var}_marched.dim() == 3 else {var}_marched
    """,
)
def Raymarch(ctx, raymarcher, densities, features):
    """Apply a raymarcher to densities and features sampled along rays (e.g. by ``VolumeSampler``).

    With 10 cameras of 64 x 64 rays this gives (10, 64, 64, 4) for RGB features: the book's chapter-5 step.
    """
    if densities.dim() < 2 or densities.shape[-1] != 1:
        ctx.fail("densities", f"expects (B, ..., n_pts_per_ray, 1), got {list(densities.shape)}")
    if isinstance(raymarcher, _EmissionAbsorptionRaymarcher):
        if features is None:
            ctx.fail("features", "emission-absorption raymarching needs features")
        if features.shape[:-1] != densities.shape[:-1]:
            ctx.fail("features", f"shape {list(features.shape)} does not match densities {list(densities.shape)}")
    images = raymarcher(rays_densities=densities, rays_features=features)
    return images[:, :, None] if images.dim() == 3 else images
