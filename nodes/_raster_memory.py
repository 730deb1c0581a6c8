"""The memory a mesh or point render needs before it is asked for: rasterization keeps, per image, pixel and
kept face (point), an index, a depth, barycentrics and a distance, and the shader or compositor works on the
same (batch, H, W, K) grid. A render that cannot fit is refused with the figure, as the voxel and ray nodes do,
instead of failing inside the allocator with a raw message.
"""
from __future__ import annotations

from nodegraph.memory import ensure_fits

# bytes per (image, pixel, kept face): pix_to_face int64, zbuf, 3 barycentrics, dist (28), plus at least the
# shaded RGB of each kept face (12); a lower bound, so nothing that fits is refused
MESH_BYTES_PER_ENTRY = 40
# bytes per (image, pixel, kept point): idx int64, zbuf, dist (16), plus the compositing weight (4)
POINT_BYTES_PER_ENTRY = 20


def check_raster_memory(ctx, field: str, rasterizer, batch: int, cameras, per_entry: int, kept: str) -> None:
    """Refuse (on ``field``) a render whose (batch x H x W x kept) buffers exceed the device's free memory."""
    settings = getattr(rasterizer, "raster_settings", None)
    if settings is None:
        return
    size = settings.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    per_pixel = int(getattr(settings, kept, 1) or 1)
    cams = cameras if cameras is not None else getattr(rasterizer, "cameras", None)
    views = max(batch, len(cams) if cams is not None else 1)
    needed = float(views) * height * width * per_pixel * per_entry
    ensure_fits(ctx, field, needed, f"rasterizing {views} image(s) of {height} x {width} pixels with "
                                    f"{per_pixel} {kept.replace('_', ' ')}",
                hint="lower image_size or the faces/points kept per pixel, or render fewer views at once")
