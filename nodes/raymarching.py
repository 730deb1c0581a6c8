"""Raymarching and the two ray-based renderers: a volume (voxel grid) or an implicit function (a field).

A raymarcher turns the densities and features sampled along each ray into a pixel. ``VolumeRenderer`` and
``ImplicitRenderer`` chain raysampler -> field -> raymarcher for a batch of cameras, optionally in chunks of
rays so a full-image render of a large field keeps its memory bounded. Outside a training loop they render
without gradients.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from pytorch3d.renderer import AbsorptionOnlyRaymarcher as _AbsorptionOnlyRaymarcher
from pytorch3d.renderer import EmissionAbsorptionRaymarcher as _EmissionAbsorptionRaymarcher
from pytorch3d.renderer import ImplicitRenderer as _ImplicitRenderer
from pytorch3d.renderer import RayBundle

from nodegraph.spec import Choice, Input, Int, Output, node
from nodes.raysampling import check_ray_memory, images_shape
from nodes.volumes import VolumeField, match_batch

# bytes of working memory per ray point when a field says nothing (coordinates, samples, raymarching)
DEFAULT_BYTES_PER_POINT = 64

# ---------------------------------------------------------------------------------------- raymarchers


@node(
    category="raymarching",
    params=[Int("surface_thickness", 1, "samples by which absorption lags density, so a hard surface still "
                                        "shows", min=1, max=64)],
    outputs=[Output("raymarcher", "Raymarcher")],
)
def EmissionAbsorptionRaymarcher(ctx, surface_thickness):
    """Emission-absorption raymarching: each ray's colour is its features weighted by how much light reaches
    and is absorbed at each point (``cumprod(1 - density)``); the last channel is the opacity.

    Densities must be in [0, 1]. Renders are (..., C + 1): features then opacity (the silhouette).
    """
    return _EmissionAbsorptionRaymarcher(surface_thickness=surface_thickness)


@node(category="raymarching", outputs=[Output("raymarcher", "Raymarcher")])
def AbsorptionOnlyRaymarcher(ctx):
    """Absorption-only raymarching: just the opacity of each ray, ``1 - prod(1 - density)`` (one channel).

    Features are ignored; use it for silhouettes or density-only volumes.
    """
    return _AbsorptionOnlyRaymarcher()


def _image_output(images: torch.Tensor, bundle: RayBundle) -> torch.Tensor:
    """Raymarched rays as an image batch: grids keep (B, H, W, C); n random rays become (B, n, 1, C)."""
    return images.reshape(*images_shape(bundle), images.shape[-1])


@node(
    category="raymarching",
    inputs=[Input("raymarcher", "Raymarcher"),
            Input("densities", "Tensor", "(B, ..., n_pts_per_ray, 1) in [0, 1]"),
            Input("features", "Tensor", "(B, ..., n_pts_per_ray, C); absorption-only marching ignores them",
                  optional=True)],
    outputs=[Output("images", "Images", "(B, H, W, C + 1) features then opacity (emission-absorption), or "
                                        "(B, H, W, 1) opacity (absorption-only); n random rays give (B, n, 1, .)")],
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


# ---------------------------------------------------------------------------------------- rendering


def _sub_bundle(flat: RayBundle, start: int, stop: int) -> RayBundle:
    return RayBundle(flat.origins[:, start:stop], flat.directions[:, start:stop], flat.lengths[:, start:stop],
                     flat.xys[:, start:stop])


def render_rays(ctx, cameras, raysampler, raymarcher, field: Callable, chunk_size: int = 0,
                bytes_per_point: float = DEFAULT_BYTES_PER_POINT, field_name: str = "function",
                **kwargs: Any) -> tuple[torch.Tensor, RayBundle]:
    """Sample rays from ``cameras``, evaluate ``field`` along them and raymarch: (images, ray bundle).

    With ``chunk_size`` > 0 the field sees at most that many rays per call (spread over the camera batch, so a
    per-camera field like a volume batch still lines up), which bounds the memory of a big full-image render.
    Gradients are kept only inside a training loop.
    """
    check_ray_memory(ctx, "raysampler", raysampler, cameras, bytes_per_point, chunk_size,
                     what=f"rendering {field_name}")
    with torch.set_grad_enabled(torch.is_grad_enabled() and ctx.in_loop):
        if chunk_size <= 0:
            images, bundle = _ImplicitRenderer(raysampler, raymarcher)(cameras=cameras, volumetric_function=field,
                                                                      **kwargs)
            return _image_output(images, bundle), bundle
        bundle = raysampler(cameras=cameras)
        batch = bundle.origins.shape[0]
        flat = RayBundle(bundle.origins.reshape(batch, -1, 3), bundle.directions.reshape(batch, -1, 3),
                         bundle.lengths.reshape(batch, -1, bundle.lengths.shape[-1]), bundle.xys.reshape(batch, -1, 2))
        per_call = max(1, chunk_size // batch)
        n = flat.origins.shape[1]
        parts = []
        for start in range(0, n, per_call):
            ctx.check_cancelled()
            sub = _sub_bundle(flat, start, start + per_call)
            dens, feats = field(ray_bundle=sub, cameras=cameras, **kwargs)
            parts.append(raymarcher(rays_densities=dens, rays_features=feats, ray_bundle=sub))
        images = torch.cat(parts, dim=1)
        return _image_output(images, bundle), bundle


def renderer_outputs(images: torch.Tensor, bundle: RayBundle) -> dict:
    return {"images": images, "rgb": images[..., :-1], "silhouettes": images[..., -1:], "ray_bundle": bundle}


_RENDER_OUTPUTS = [
    Output("images", "Images", "(B, H, W, C + 1): features then opacity; n Monte-Carlo rays give (B, n, 1, C + 1)"),
    Output("rgb", "Images", "(B, H, W, C): the features (colours) alone"),
    Output("silhouettes", "Images", "(B, H, W, 1): the opacity of each ray"),
    Output("ray_bundle", "RayBundle", "the rays that were cast (their xys locate Monte-Carlo samples)"),
]
_CHUNK = Int("chunk_size", 0, "evaluate at most this many rays at once (0: all; at least one per camera); "
                              "bounds the memory of big full-image renders", min=0)


@node(
    category="rendering",
    inputs=[Input("cameras", "Cameras"), Input("volumes", "Volumes", "one volume (shared) or one per camera"),
            Input("raysampler", "Raysampler"), Input("raymarcher", "Raymarcher")],
    params=[Choice("sample_mode", "bilinear", "interpolation between voxels", choices=("bilinear", "nearest")),
            _CHUNK],
    outputs=_RENDER_OUTPUTS,
)
def VolumeRenderer(ctx, cameras, volumes, raysampler, raymarcher, sample_mode, chunk_size):
    """Render voxel grids from a batch of cameras: sample rays, read the volume along them, raymarch
    (PyTorch3D ``VolumeRenderer``).

    A single volume is shared by every camera without copying it, as the volume tutorial does.
    """
    vols = match_batch(ctx, "volumes", volumes, len(cameras))
    if vols.features() is None and not isinstance(raymarcher, _AbsorptionOnlyRaymarcher):
        ctx.fail("volumes", "has no features; use AbsorptionOnlyRaymarcher or give the volumes features")
    channels = 1 + (vols.features().shape[1] if vols.features() is not None else 0)
    sampler = VolumeField(vols, sample_mode)
    images, bundle = render_rays(ctx, cameras, raysampler, raymarcher, sampler, chunk_size,
                                 bytes_per_point=(3 + channels) * 4 * 4, field_name="the volumes")
    return renderer_outputs(images, bundle)


@node(
    category="rendering",
    inputs=[Input("cameras", "Cameras"), Input("function", "ImplicitFunction", "a field such as a "
                                                                             "NeuralRadianceField or SphereField"),
            Input("raysampler", "Raysampler"), Input("raymarcher", "Raymarcher")],
    params=[_CHUNK],
    outputs=_RENDER_OUTPUTS,
)
def ImplicitRenderer(ctx, cameras, function, raysampler, raymarcher, chunk_size):
    """Render an implicit function (a field of densities and colours) from a batch of cameras
    (PyTorch3D ``ImplicitRenderer``).

    With a Monte-Carlo raysampler it renders random rays for training; with an NDC grid sampler, full images.
    For full images of a neural field set ``chunk_size`` (e.g. 4096) so only that many rays are in the field
    at once.
    """
    if not callable(function):
        ctx.fail("function", f"expects a callable field, got {type(function).__name__}")
    estimate = getattr(function, "bytes_per_point", None)
    per_point = estimate(ctx.in_loop) if callable(estimate) else DEFAULT_BYTES_PER_POINT
    images, bundle = render_rays(ctx, cameras, raysampler, raymarcher, function, chunk_size,
                                 bytes_per_point=per_point, field_name="the implicit function")
    return renderer_outputs(images, bundle)
