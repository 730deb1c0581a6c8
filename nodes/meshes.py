"""Mesh rendering: rasterization settings, the rasterizer, the shaders and the renderer that joins them.

Each node builds the PyTorch3D object of the same name; ``MeshRenderer`` calls ``MeshRenderer(rasterizer,
shader)(meshes, **overrides)`` and outputs its RGBA images, exactly as the tutorials do.
"""
from __future__ import annotations

from nodegraph.spec import Bool, Color, Float, Input, Int, Output, node

IMAGE_SIZE_MAX = 4096


@node(
    category="rendering",
    params=[
        Int("image_size", 256, "output images are image_size x image_size pixels", min=1, max=IMAGE_SIZE_MAX,
            unit="px"),
        Float("blur_radius", 0.0, "soft rasterization: how far (in NDC, squared) a face's influence spreads",
              min=0.0),
        Int("faces_per_pixel", 1, "how many nearest faces each pixel keeps (more for soft blending)", min=1,
            max=1000),
        Bool("perspective_correct", None, "perspective-correct barycentrics; empty: PyTorch3D's default (on for "
                                          "perspective cameras)", optional=True),
        Int("bin_size", None, "coarse-to-fine bin size; empty: heuristic, 0: naive rasterization", optional=True,
            min=0, max=IMAGE_SIZE_MAX),
        Int("max_faces_per_bin", None, "faces a bin may hold; empty: PyTorch3D's default", optional=True, min=1),
        Bool("cull_backfaces", False, "skip faces that point away from the camera"),
    ],
    outputs=[Output("settings", "RasterSettings")],
)
def RasterizationSettings(ctx, image_size, blur_radius, faces_per_pixel, perspective_correct, bin_size,
                          max_faces_per_bin, cull_backfaces):
    """How meshes are rasterized: image size, soft blur, faces kept per pixel (``RasterizationSettings``)."""
    from pytorch3d.renderer import RasterizationSettings as P3D

    return P3D(image_size=image_size, blur_radius=blur_radius, faces_per_pixel=faces_per_pixel,
               perspective_correct=perspective_correct, bin_size=bin_size, max_faces_per_bin=max_faces_per_bin,
               cull_backfaces=cull_backfaces)


@node(
    category="rendering",
    params=[
        Float("sigma", 1e-4, "edge sharpness of the soft silhouette (smaller: sharper)", min=0.0),
        Float("gamma", 1e-4, "depth blending: smaller puts more weight on the nearest face", min=1e-12),
        Color("background", (1.0, 1.0, 1.0), "background colour"),
    ],
    outputs=[Output("blend", "BlendParams")],
)
def BlendParams(ctx, sigma, gamma, background):
    """Soft blending parameters for the shaders: sigma, gamma and the background colour."""
    from pytorch3d.renderer import BlendParams as P3D

    return P3D(sigma=sigma, gamma=gamma, background_color=tuple(background))


@node(
    category="rendering",
    inputs=[Input("cameras", "Cameras"), Input("settings", "RasterSettings", "defaults when not connected",
                                                 optional=True)],
    outputs=[Output("rasterizer", "Rasterizer")],
)
def MeshRasterizer(ctx, cameras, settings):
    """Turns meshes into per-pixel fragments (nearest faces, barycentrics, depth) seen by ``cameras``."""
    from pytorch3d.renderer import MeshRasterizer as P3D

    return P3D(cameras=cameras, raster_settings=settings)


_SHADER_INPUTS = [
    Input("cameras", "Cameras", "usually the rasterizer's cameras", optional=True),
    Input("lights", "Lights", "a white point light above when not connected", optional=True),
    Input("materials", "Materials", "PyTorch3D's default material when not connected", optional=True),
    Input("blend", "BlendParams", "default blending when not connected", optional=True),
]


def _shader(cls_name: str, ctx, cameras, lights, materials, blend):
    import pytorch3d.renderer as r

    return getattr(r, cls_name)(device=ctx.device, cameras=cameras, lights=lights, materials=materials,
                                blend_params=blend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")])
def SoftPhongShader(ctx, cameras, lights, materials, blend):
    """Phong lighting per pixel with soft (differentiable) blending of the nearest faces."""
    return _shader("SoftPhongShader", ctx, cameras, lights, materials, blend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")])
def HardPhongShader(ctx, cameras, lights, materials, blend):
    """Phong lighting per pixel, keeping only the nearest face (hard edges)."""
    return _shader("HardPhongShader", ctx, cameras, lights, materials, blend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")])
def HardFlatShader(ctx, cameras, lights, materials, blend):
    """Flat shading: one lighting value per face, nearest face only."""
    return _shader("HardFlatShader", ctx, cameras, lights, materials, blend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")])
def SoftGouraudShader(ctx, cameras, lights, materials, blend):
    """Gouraud shading: lighting computed at vertices and interpolated, with soft blending."""
    return _shader("SoftGouraudShader", ctx, cameras, lights, materials, blend)


@node(
    category="rendering",
    inputs=[Input("blend", "BlendParams", "default blending when not connected", optional=True)],
    outputs=[Output("shader", "Shader")],
)
def SoftSilhouetteShader(ctx, blend):
    """A soft silhouette: the alpha channel is the probability each pixel is covered (no lighting)."""
    from pytorch3d.renderer import SoftSilhouetteShader as P3D

    return P3D(blend_params=blend)


@node(
    category="rendering",
    inputs=[
        Input("rasterizer", "Rasterizer"),
        Input("shader", "Shader"),
        Input("meshes", "Meshes"),
        Input("cameras", "Cameras", "render with these instead of the rasterizer's and shader's", optional=True),
        Input("lights", "Lights", "light with these instead of the shader's", optional=True),
    ],
    outputs=[Output("images", "Images", "(B, H, W, 4) RGBA")],
)
def MeshRenderer(ctx, rasterizer, shader, meshes, cameras, lights):
    """Rasterize ``meshes`` and shade the fragments: RGBA images, one per mesh of the batch."""
    from pytorch3d.renderer import MeshRasterizer as P3DRasterizer
    from pytorch3d.renderer import MeshRenderer as P3D

    check_render_inputs(ctx, rasterizer, P3DRasterizer, "meshes", len(meshes), "mesh(es)", cameras,
                        "use ExtendMesh to repeat the mesh once per camera")
    if type(shader).__name__.endswith("GouraudShader") and type(meshes.textures).__name__ != "TexturesVertex":
        ctx.fail("meshes", "Gouraud shading needs vertex colours (TexturesVertex); insert TextureToVertexColors "
                           "or VertexColors before the renderer")
    return P3D(rasterizer=rasterizer, shader=shader)(meshes, **overrides(cameras=cameras, lights=lights))


def check_render_inputs(ctx, rasterizer, rasterizer_cls: type, field: str, batch: int, what: str, cameras,
                        hint: str) -> None:
    """The checks MeshRenderer and PointsRenderer share: ``rasterizer`` is a ``rasterizer_cls``, and the batch on
    ``field`` (``batch`` ``what``) fits the cameras the render uses (``cameras``, else the rasterizer's): as many,
    or one."""
    if not isinstance(rasterizer, rasterizer_cls):
        ctx.fail("rasterizer", f"needs a {rasterizer_cls.__name__}, got {type(rasterizer).__name__}")
    cams = cameras if cameras is not None else rasterizer.cameras
    if cams is not None and batch != len(cams) and len(cams) != 1:
        ctx.fail(field, f"batch of {batch} {what} but {len(cams)} cameras; {hint}")


def overrides(**inputs) -> dict:
    """The optional inputs that are connected, as keyword arguments for a PyTorch3D renderer's call."""
    return {name: value for name, value in inputs.items() if value is not None}
