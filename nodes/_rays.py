"""Ray and volume internals shared by the raysampling, volumes, rendering and preview nodes; no nodes here.

How many rays a raysampler will cast and whether their points fit in memory (checked before anything is cast),
the image shape a bundle renders to, and a batch of volumes seen as a field of the rays (one per camera, grids
of different sizes sampled one at a time).
"""
from __future__ import annotations

import torch
from pytorch3d.renderer import RayBundle
from pytorch3d.renderer import VolumeSampler as _VolumeSampler
from pytorch3d.structures import Volumes as _Volumes

from nodegraph.memory import ensure_fits

MAX_PTS_PER_RAY = 4096

# ------------------------------------------------------------------------------------------- rays


def expected_rays(raysampler, n_cameras: int) -> tuple[int, int]:
    """(rays, points per ray) a raysampler will cast for ``n_cameras`` cameras, read before sampling."""
    per_image = getattr(raysampler, "_n_rays_per_image", None)
    if per_image is None:
        grid = getattr(raysampler, "_xy_grid", None)
        per_image = grid.shape[0] * grid.shape[1] if grid is not None else 0
    return n_cameras * int(per_image), int(getattr(raysampler, "_n_pts_per_ray", 0))


def check_ray_memory(ctx, field: str, raysampler, cameras, bytes_per_point: float, chunk_rays: int = 0,
                     what: str = "sampling these rays") -> None:
    """Refuse (naming ``field``) a ray count whose points would not fit: estimated before anything is cast.

    Checked on every call, inside training loops too: the estimate is arithmetic and the query of the device's
    free memory costs about 13 us on a CPU (``/proc/meminfo``), next to milliseconds for the rays themselves.
    """
    rays, pts = expected_rays(raysampler, len(cameras))
    held = min(rays, chunk_rays) if chunk_rays else rays
    # the bundle (origins, directions, xys, lengths) for every ray, plus per-point work for the rays held at once
    needed = rays * (8 + pts) * 4 + held * pts * bytes_per_point
    ensure_fits(ctx, field, needed, f"{what} ({rays:,} rays x {pts} points)",
                "use fewer rays or points per ray, a smaller image, or a smaller chunk_size")


def images_shape(bundle: RayBundle) -> tuple[int, ...]:
    """The (B, H, W) an image rendered from this bundle has: grids keep theirs, n random rays become (B, n, 1)."""
    spatial = tuple(bundle.lengths.shape[:-1])
    return (*spatial, 1) if len(spatial) == 2 else spatial


# ------------------------------------------------------------------------------------------- volumes


def expand_volumes(volumes: _Volumes, n: int) -> _Volumes:
    """A batch of one volume seen ``n`` times, without copying the grid (as the tutorial's ``expand``)."""
    if len(volumes) == n:
        return volumes
    feats = volumes.features()
    out = _Volumes(densities=volumes.densities().expand(n, *volumes.densities().shape[1:]),
                   features=None if feats is None else feats.expand(n, *feats.shape[1:]))
    volumes.locator._copy_transform_and_sizes(out.locator, index=torch.zeros(n, dtype=torch.long,
                                                                              device=volumes.device))
    return out


def is_ragged(volumes: _Volumes) -> bool:
    """Whether the batch holds grids of different sizes (padded to the largest inside ``Volumes``)."""
    return len(volumes) > 1 and bool((volumes.get_grid_sizes() != volumes.get_grid_sizes()[:1]).any())


def single_volume(volumes: _Volumes, i: int) -> _Volumes:
    """Volume ``i`` of a batch, unpadded, with its own voxel size and position."""
    feats = volumes.features_list()[i][None] if volumes.features() is not None else None
    out = _Volumes(densities=volumes.densities_list()[i][None], features=feats)
    volumes.locator._copy_transform_and_sizes(out.locator, index=torch.tensor([i], device=volumes.device))
    return out


class VolumeField(torch.nn.Module):
    """A batch of volumes as a field of the ray bundle, one volume per camera.

    PyTorch3D's ``VolumeSampler`` reads the padded tensor, which is right only when every grid has one size; a
    batch of different sizes is sampled one volume at a time, each at its own resolution.
    """

    def __init__(self, volumes: _Volumes, sample_mode: str = "bilinear") -> None:
        super().__init__()
        self.parts = ([_VolumeSampler(single_volume(volumes, i), sample_mode=sample_mode)
                       for i in range(len(volumes))] if is_ragged(volumes) else None)
        self.whole = None if self.parts else _VolumeSampler(volumes, sample_mode=sample_mode)

    def forward(self, ray_bundle, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if self.whole is not None:
            return self.whole(ray_bundle)
        outs = [part(RayBundle(*(t[i:i + 1] for t in (ray_bundle.origins, ray_bundle.directions,
                                                       ray_bundle.lengths, ray_bundle.xys))))
                for i, part in enumerate(self.parts)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def shared_volumes(volumes: _Volumes, n: int) -> _Volumes:
    """``match_batch`` without its check: the volumes, or the single one seen ``n`` times."""
    return volumes if len(volumes) == n else expand_volumes(volumes, n)


def match_batch(ctx, field: str, volumes: _Volumes, n: int) -> _Volumes:
    """Volumes for a batch of ``n`` rays/cameras: equal batches pass, a single volume is shared."""
    if len(volumes) == n:
        return volumes
    if len(volumes) == 1:
        return expand_volumes(volumes, n)
    ctx.fail(field, f"has a batch of {len(volumes)} volumes but there are {n} cameras; give one volume (shared "
                    f"by every camera) or one per camera")
