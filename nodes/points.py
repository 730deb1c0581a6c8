"""Point cloud rendering: rasterization settings, the rasterizer, compositors and the renderer."""
from __future__ import annotations

from nodegraph.spec import Float, Floats, Input, Int, Output, node
from nodes.meshes import IMAGE_SIZE_MAX, check_render_inputs, overrides


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


_COMPOSITOR_PARAMS = [
    Floats("background", None, "background colour; empty: transparent (zero features)", length=3, min=0.0, max=1.0,
           widget="color", optional=True),
]


def _compositor(cls_name: str, background):
    import pytorch3d.renderer as r

    return getattr(r, cls_name)(background_color=None if background is None else tuple(background))


@node(category="rendering", params=_COMPOSITOR_PARAMS, outputs=[Output("compositor", "Compositor")])
def AlphaCompositor(ctx, background):
    """Blend the points of each pixel front to back by their alpha (``AlphaCompositor``)."""
    return _compositor("AlphaCompositor", background)


@node(category="rendering", params=_COMPOSITOR_PARAMS, outputs=[Output("compositor", "Compositor")])
def NormWeightedCompositor(ctx, background):
    """Average the points of each pixel weighted by their alpha (``NormWeightedCompositor``)."""
    return _compositor("NormWeightedCompositor", background)


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

    check_render_inputs(ctx, rasterizer, P3DRasterizer, "points", len(points), "cloud(s)", cameras,
                        "the batch sizes must match")
    if points.features_packed() is None:
        ctx.fail("points", "the point cloud has no features (colours) to composite; load one with colours or "
                           "sample with with_colors")
    return P3D(rasterizer=rasterizer, compositor=compositor)(points, **overrides(cameras=cameras))
