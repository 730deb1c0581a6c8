"""Point cloud rendering: rasterization settings, the rasterizer, compositors and the renderer."""
from __future__ import annotations

from nodegraph.spec import Float, Floats, Input, Int, Output, node
from nodes.meshes import IMAGE_SIZE_MAX


@node(
    category="rendering",
    params=[
        Int("image_size", 256, "output images are image_size x image_size pixels", min=1, max=IMAGE_SIZE_MAX,
            unit="px"),
        Float("radius", 0.01, "point radius in NDC units", min=0.0, max=2.0),
        Int("points_per_pixel", 8, "how many nearest points each pixel keeps", min=1, max=150),
        Int("bin_size", None, "coarse-to-fine bin size; empty: heuristic, 0: naive", optional=True, min=0,
            max=IMAGE_SIZE_MAX),
        Int("max_points_per_bin", None, "points a bin may hold; empty: PyTorch3D's default", optional=True, min=1),
    ],
    outputs=[Output("settings", "PointsRasterSettings")],
)
def PointsRasterizationSettings(ctx, image_size, radius, points_per_pixel, bin_size, max_points_per_bin):
    """How point clouds are rasterized: image size, point radius, points kept per pixel."""
    from pytorch3d.renderer import PointsRasterizationSettings as P3D

    return P3D(image_size=image_size, radius=radius, points_per_pixel=points_per_pixel, bin_size=bin_size,
               max_points_per_bin=max_points_per_bin)


@node(
    category="rendering",
    inputs=[Input("cameras", "Cameras"),
            Input("settings", "PointsRasterSettings", "defaults when not connected", optional=True)],
    outputs=[Output("rasterizer", "Rasterizer")],
)
def PointsRasterizer(ctx, cameras, settings):
    """Turns point clouds into per-pixel fragments (nearest points, depths, distances) seen by ``cameras``."""
    from pytorch3d.renderer import PointsRasterizer as P3D

    return P3D(cameras=cameras, raster_settings=settings)


def _background(color):
    return None if color is None else tuple(color)


@node(
    category="rendering",
    params=[Floats("background", None, "background colour; empty: transparent (zero features)", length=3, min=0.0,
                   max=1.0, widget="color", optional=True)],
    outputs=[Output("compositor", "Compositor")],
)
def AlphaCompositor(ctx, background):
    """Blend the points of each pixel front to back by their alpha (``AlphaCompositor``)."""
    from pytorch3d.renderer import AlphaCompositor as P3D

    return P3D(background_color=_background(background))


@node(
    category="rendering",
    params=[Floats("background", None, "background colour; empty: transparent (zero features)", length=3, min=0.0,
                   max=1.0, widget="color", optional=True)],
    outputs=[Output("compositor", "Compositor")],
)
def NormWeightedCompositor(ctx, background):
    """Average the points of each pixel weighted by their alpha (``NormWeightedCompositor``)."""
    from pytorch3d.renderer import NormWeightedCompositor as P3D

    return P3D(background_color=_background(background))


@node(
    category="rendering",
    inputs=[
        Input("rasterizer", "Rasterizer"),
        Input("compositor", "Compositor"),
        Input("points", "Pointclouds"),
        Input("cameras", "Cameras", "render with these instead of the rasterizer's", optional=True),
    ],
    outputs=[Output("images", "Images", "(B, H, W, C): the composited point features (RGB, or RGBA with alpha)")],
)
def PointsRenderer(ctx, rasterizer, compositor, points, cameras):
    """Rasterize ``points`` and composite their features into images, one per cloud of the batch."""
    from pytorch3d.renderer import PointsRasterizer as P3DRasterizer
    from pytorch3d.renderer import PointsRenderer as P3D

    if not isinstance(rasterizer, P3DRasterizer):
        ctx.fail("rasterizer", f"needs a PointsRasterizer, got {type(rasterizer).__name__}")
    if points.features_packed() is None:
        ctx.fail("points", "the point cloud has no features (colours) to composite; load one with colours or "
                           "sample with with_colors")
    cams = cameras if cameras is not None else rasterizer.cameras
    if cams is not None and len(points) != len(cams) and len(cams) != 1:
        ctx.fail("points", f"batch of {len(points)} cloud(s) but {len(cams)} cameras; the batch sizes must match")
    kwargs = {"cameras": cameras} if cameras is not None else {}
    return P3D(rasterizer=rasterizer, compositor=compositor)(points, **kwargs)
