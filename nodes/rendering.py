"""Rendering: meshes and point clouds through a rasterizer, volumes and implicit functions through rays.

Each mesh and point node builds the PyTorch3D object of the same name; ``MeshRenderer`` calls
``MeshRenderer(rasterizer, shader)(meshes, **overrides)`` and outputs its RGBA images, exactly as the tutorials
do, and ``PointsRenderer`` likewise with a compositor. ``VolumeRenderer`` and ``ImplicitRenderer`` chain
raysampler -> field -> raymarcher for a batch of cameras, optionally in chunks of rays so a full-image render of
a large field keeps its memory bounded. Outside a training loop they render without gradients.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from pytorch3d.renderer import AbsorptionOnlyRaymarcher as _AbsorptionOnlyRaymarcher
from pytorch3d.renderer import ImplicitRenderer as _ImplicitRenderer
from pytorch3d.renderer import RayBundle

from nodegraph.raster import BACKENDS, BackendMeshRasterizer, BackendPointsRasterizer
from nodegraph.spec import Bool, Choice, Color, Float, Floats, Input, Int, Output, node

from ._raster_memory import MESH_BYTES_PER_ENTRY, POINT_BYTES_PER_ENTRY, check_raster_memory
from ._rays import VolumeField, check_ray_memory, images_shape, match_batch, shared_volumes

IMAGE_SIZE_MAX = 4096
# bytes of working memory per ray point when a field says nothing (coordinates, samples, raymarching)
DEFAULT_BYTES_PER_POINT = 64


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


# ---------------------------------------------------------------------------------------- meshes


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
    export="""
        from pytorch3d.renderer import RasterizationSettings
        {out} = RasterizationSettings(image_size={image_size}, blur_radius={blur_radius},
            faces_per_pixel={faces_per_pixel}, perspective_correct={perspective_correct}, bin_size={bin_size},
            max_faces_per_bin={max_faces_per_bin}, cull_backfaces={cull_backfaces})
    """,
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
    export="""
        from pytorch3d.renderer import BlendParams
        {out} = BlendParams(sigma={sigma}, gamma={gamma}, background_color=tuple({background}))
    """,
)
def BlendParams(ctx, sigma, gamma, background):
    """Soft blending parameters for the shaders: sigma, gamma and the background colour."""
    from pytorch3d.renderer import BlendParams as P3D

    return P3D(sigma=sigma, gamma=gamma, background_color=tuple(background))


_BACKEND = Choice("backend", "auto", "who rasterizes: auto = the compiled CPU kernels on a CPU, PyTorch3D's "
                                     "own on CUDA; pytorch3d forces PyTorch3D's (same fragments)", choices=BACKENDS)


def _rasterizer_export(cls: str):
    """The export form of a rasterizer node: PyTorch3D's own rasterizer. The compiled CPU kernels return the same
    fragments bit for bit, but they are nodegraph's code, which a script never imports, so ``backend`` is no
    argument of the script."""
    def form(x) -> str:
        x.skip("backend")
        x.imports(f"from pytorch3d.renderer import {cls}")
        if x.values["backend"] != "pytorch3d":
            x.line("# PyTorch3D's rasterizer; on a CPU nodegraph runs its compiled kernels, which give the same fragments")
        return f"{cls}(cameras={x.inputs['cameras']}, raster_settings={x.inputs['settings']})"
    return form


@node(
    category="rendering",
    inputs=[Input("cameras", "Cameras"), Input("settings", "RasterSettings", "defaults when not connected",
                                                 optional=True)],
    params=[_BACKEND],
    outputs=[Output("rasterizer", "Rasterizer")],
    export=_rasterizer_export("MeshRasterizer"),
)
def MeshRasterizer(ctx, cameras, settings, backend):
    """Turns meshes into per-pixel fragments (nearest faces, barycentrics, depth) seen by ``cameras``."""
    return BackendMeshRasterizer(cameras=cameras, raster_settings=settings, backend=backend)


_SHADER_INPUTS = [
    Input("cameras", "Cameras", "usually the rasterizer's cameras", optional=True),
    Input("lights", "Lights", "a white point light above when not connected", optional=True),
    Input("materials", "Materials", "PyTorch3D's default material when not connected", optional=True),
    Input("blend", "BlendParams", "default blending when not connected", optional=True),
]


def keywords(x, names: tuple[str, ...], rename: dict | None = None) -> str:
    """``name=<input>, ...`` for the connected inputs among ``names`` (export forms; PyTorch3D's defaults for
    the others, as the executor passes None)."""
    rename = rename or {}
    return ", ".join(f"{rename.get(n, n)}={x.inputs[n]}" for n in names if x.inputs[n] is not None)


def _shader_export(cls_name: str):
    """PyTorch3D's shader; a ``backend`` param (the Phong shaders') is no argument of the script, as for the
    rasterizers: the compiled shading kernel is nodegraph's code and gives the same image."""
    def form(x) -> str:
        if "backend" in x.values:
            x.skip("backend")
        x.imports(f"from pytorch3d.renderer import {cls_name}")
        rest = keywords(x, ("cameras", "lights", "materials", "blend"), {"blend": "blend_params"})
        return f"{cls_name}(device=device{', ' + rest if rest else ''})"
    return form


def _renderer_export(x, cls: str, second: str, batch: str, extra: tuple[str, ...]) -> str:
    """``cls(rasterizer=..., <second>=...)(<batch>, <connected extra inputs>)``, as the tutorials render."""
    x.imports(f"from pytorch3d.renderer import {cls}")
    call = ", ".join(filter(None, [x.inputs[batch], keywords(x, extra)]))
    return f"{cls}(rasterizer={x.inputs['rasterizer']}, {second}={x.inputs[second]})({call})"


def _shader(cls_name: str, ctx, cameras, lights, materials, blend, **extra):
    """PyTorch3D's shader ``cls_name``; nodegraph's subclass of it when ``extra`` holds a ``backend``."""
    import pytorch3d.renderer as r

    import nodegraph.raster as ours

    cls = getattr(ours, f"Backend{cls_name}") if "backend" in extra else getattr(r, cls_name)
    return cls(device=ctx.device, cameras=cameras, lights=lights, materials=materials, blend_params=blend, **extra)


_SHADING_BACKEND = Choice("backend", "auto", "who shades: auto = a compiled CPU kernel for frames nothing "
                                             "differentiates through (renders, targets, previews), PyTorch3D's "
                                             "own for the rest and on CUDA; pytorch3d forces PyTorch3D's (same "
                                             "image to float rounding)", choices=BACKENDS)


@node(category="rendering", inputs=_SHADER_INPUTS, params=[_SHADING_BACKEND], outputs=[Output("shader", "Shader")],
      export=_shader_export("SoftPhongShader"))
def SoftPhongShader(ctx, cameras, lights, materials, blend, backend):
    """Phong lighting per pixel with soft (differentiable) blending of the nearest faces."""
    return _shader("SoftPhongShader", ctx, cameras, lights, materials, blend, backend=backend)


@node(category="rendering", inputs=_SHADER_INPUTS, params=[_SHADING_BACKEND], outputs=[Output("shader", "Shader")],
      export=_shader_export("HardPhongShader"))
def HardPhongShader(ctx, cameras, lights, materials, blend, backend):
    """Phong lighting per pixel, keeping only the nearest face (hard edges)."""
    return _shader("HardPhongShader", ctx, cameras, lights, materials, blend, backend=backend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")],
      export=_shader_export("HardFlatShader"))
def HardFlatShader(ctx, cameras, lights, materials, blend):
    """Flat shading: one lighting value per face, nearest face only."""
    return _shader("HardFlatShader", ctx, cameras, lights, materials, blend)


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")],
      export=_shader_export("SoftGouraudShader"))
def SoftGouraudShader(ctx, cameras, lights, materials, blend):
    """Gouraud shading: lighting computed at vertices and interpolated, with soft blending."""
    return _shader("SoftGouraudShader", ctx, cameras, lights, materials, blend)


@node(
    category="rendering",
    inputs=[Input("blend", "BlendParams", "default blending when not connected", optional=True)],
    outputs=[Output("shader", "Shader")],
    export="""
        from pytorch3d.renderer import SoftSilhouetteShader
        {out} = SoftSilhouetteShader(blend_params={blend})
    """,
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
    export=lambda x: _renderer_export(x, "MeshRenderer", "shader", "meshes", ("cameras", "lights")),
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
    if cameras is None and hasattr(shader, "cameras") and shader.cameras is None:
        ctx.fail("shader", f"{type(shader).__name__} has no cameras to shade with: connect the cameras to the "
                           "shader's cameras input or to this renderer's")
    check_raster_memory(ctx, "rasterizer", rasterizer, len(meshes), cameras, MESH_BYTES_PER_ENTRY, "faces_per_pixel")
    return P3D(rasterizer=rasterizer, shader=shader)(meshes, **overrides(cameras=cameras, lights=lights))


# ---------------------------------------------------------------------------------------- point clouds


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
    export="""
        from pytorch3d.renderer import PointsRasterizationSettings
        {out} = PointsRasterizationSettings(image_size={image_size}, radius={radius},
            points_per_pixel={points_per_pixel}, bin_size={bin_size}, max_points_per_bin={max_points_per_bin})
    """,
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
    params=[_BACKEND],
    outputs=[Output("rasterizer", "Rasterizer")],
    export=_rasterizer_export("PointsRasterizer"),
)
def PointsRasterizer(ctx, cameras, settings, backend):
    """Turns point clouds into per-pixel fragments (nearest points, depths, distances) seen by ``cameras``."""
    return BackendPointsRasterizer(cameras=cameras, raster_settings=settings, backend=backend)


_COMPOSITOR_PARAMS = [
    Floats("background", None, "background colour; empty: transparent (zero features)", length=3, min=0.0, max=1.0,
           widget="color", optional=True),
]


def _compositor_export(cls_name: str):
    def form(x) -> str:
        x.imports(f"from pytorch3d.renderer import {cls_name}")
        bg = x.params["background"]
        return f"{cls_name}(background_color=None if {bg} is None else tuple({bg}))"
    return form


def _compositor(cls_name: str, background):
    import pytorch3d.renderer as r

    return getattr(r, cls_name)(background_color=None if background is None else tuple(background))


@node(category="rendering", params=_COMPOSITOR_PARAMS, outputs=[Output("compositor", "Compositor")],
      export=_compositor_export("AlphaCompositor"))
def AlphaCompositor(ctx, background):
    """Blend the points of each pixel front to back by their alpha (``AlphaCompositor``)."""
    return _compositor("AlphaCompositor", background)


@node(category="rendering", params=_COMPOSITOR_PARAMS, outputs=[Output("compositor", "Compositor")],
      export=_compositor_export("NormWeightedCompositor"))
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
    export=lambda x: _renderer_export(x, "PointsRenderer", "compositor", "points", ("cameras",)),
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
    check_raster_memory(ctx, "rasterizer", rasterizer, len(points), cameras, POINT_BYTES_PER_ENTRY,
                        "points_per_pixel")
    return P3D(rasterizer=rasterizer, compositor=compositor)(points, **overrides(cameras=cameras))


# ---------------------------------------------------------------------------------------- rays


def _image_output(images: torch.Tensor, bundle: RayBundle) -> torch.Tensor:
    """Raymarched rays as an image batch: grids keep (B, H, W, C); n random rays become (B, n, 1, C)."""
    return images.reshape(*images_shape(bundle), images.shape[-1])


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
    return march(cameras, raysampler, raymarcher, field, chunk_size, torch.is_grad_enabled() and ctx.in_loop,
                 ctx.check_cancelled, **kwargs)


def march(cameras, raysampler, raymarcher, field: Callable, chunk_size: int, grad: bool,
          between: Callable | None = None, **kwargs: Any) -> tuple[torch.Tensor, RayBundle]:
    """``render_rays`` without its checks: sample, evaluate ``field`` (in chunks of rays), raymarch, with
    gradients only when ``grad``; ``between`` runs between chunks. Exported scripts call this."""
    with torch.set_grad_enabled(grad):
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
            if between is not None:
                between()
            sub = _sub_bundle(flat, start, start + per_call)
            dens, feats = field(ray_bundle=sub, cameras=cameras, **kwargs)
            parts.append(raymarcher(rays_densities=dens, rays_features=feats, ray_bundle=sub))
        images = torch.cat(parts, dim=1)
        return _image_output(images, bundle), bundle


def _rays_export(x, field: str) -> dict:
    """A ray renderer in a script: ``march`` (copied) over ``field``, then its four outputs."""
    images, bundle = x.out("images"), x.out("ray_bundle")
    grad = "True" if x.mode == "loop" else "False"
    x.line(f"{images}, {bundle} = {x.helper(march)}({x.inputs['cameras']}, {x.inputs['raysampler']}, "
           f"{x.inputs['raymarcher']}, {field}, {x.params['chunk_size']}, grad={grad})")
    return {"images": images, "rgb": f"{images}[..., :-1]", "silhouettes": f"{images}[..., -1:]",
            "ray_bundle": bundle}


def _volume_renderer_export(x) -> dict:
    field = x.name("field")
    vols = f"{x.helper(shared_volumes)}({x.inputs['volumes']}, len({x.inputs['cameras']}))"
    x.line(f"{field} = {x.helper(VolumeField)}({vols}, {x.params['sample_mode']})")
    return _rays_export(x, field)


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
    export=_volume_renderer_export,
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
    export=lambda x: _rays_export(x, x.inputs['function']),
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


# ---------------------------------------------------------------------------------------- more mesh shaders


@node(category="rendering", inputs=_SHADER_INPUTS, outputs=[Output("shader", "Shader")],
      export=_shader_export("HardGouraudShader"))
def HardGouraudShader(ctx, cameras, lights, materials, blend):
    """Gouraud shading: lighting computed at vertices and interpolated, nearest face only (hard edges)."""
    return _shader("HardGouraudShader", ctx, cameras, lights, materials, blend)


# ---------------------------------------------------------------------------------------- fragments as images


def _unit_range(values: torch.Tensor, covered: torch.Tensor, lo: float | None, hi: float | None) -> torch.Tensor:
    """``values`` mapped to [0, 1] between ``lo`` and ``hi`` (empty: the covered pixels' own range), 0 where
    nothing is covered."""
    if lo is None or hi is None:
        seen = values[covered]
        lo, hi = (float(seen.min()), float(seen.max())) if seen.numel() else (0.0, 1.0)
    scaled = ((values - lo) / max(hi - lo, 1e-12)).clamp(0.0, 1.0)
    return torch.where(covered, scaled, torch.zeros_like(scaled))


@node(
    category="rendering",
    inputs=[
        Input("rasterizer", "Rasterizer", "a MeshRasterizer"),
        Input("meshes", "Meshes"),
        Input("cameras", "Cameras", "rasterize with these instead of the rasterizer's", optional=True),
    ],
    params=[Floats("depth_range", None, "(near, far) that depth_image maps to 0 and 1; empty: the nearest and "
                                        "farthest covered pixel of the batch", length=2, min=0.0, optional=True)],
    outputs=[
        Output("depth", "Images", "(B, H, W, 1) the nearest face's depth (zbuf) in scene units, 0 where nothing "
                                  "is covered: what a depth loss reads"),
        Output("depth_image", "Images", "(B, H, W, 1) depth mapped to [0, 1] by depth_range (0 off the mesh)"),
        Output("normals", "Images", "(B, H, W, 3) the interpolated world-space surface normal n as (n + 1) / 2, "
                                    "0 off the mesh"),
        Output("face_ids", "Images", "(B, H, W, 1) the index of the nearest face within its mesh, -1 off it"),
        Output("face_image", "Images", "(B, H, W, 1) face index / (faces - 1), 0 off the mesh: for a preview"),
        Output("mask", "Images", "(B, H, W, 1) 1 where a face is visible"),
    ],
    export=lambda x: _fragments_export(x),
)
def MeshFragments(ctx, rasterizer, meshes, cameras, depth_range):
    """The rasterizer's fragments as images: depth (zbuf), surface normals and face ids of the nearest face
    per pixel (``MeshRasterizer(meshes)``: ``Fragments.zbuf``, ``pix_to_face``, ``bary_coords``).

    Normals interpolate the vertex normals with the barycentric coordinates, as PyTorch3D's shaders do.
    """
    from pytorch3d.renderer import MeshRasterizer as P3DRasterizer

    check_render_inputs(ctx, rasterizer, P3DRasterizer, "meshes", len(meshes), "mesh(es)", cameras,
                        "use ExtendMesh to repeat the mesh once per camera")
    if depth_range is not None and depth_range[1] <= depth_range[0]:
        ctx.fail("depth_range", f"far ({depth_range[1]}) must be greater than near ({depth_range[0]})")
    check_raster_memory(ctx, "rasterizer", rasterizer, len(meshes), cameras, MESH_BYTES_PER_ENTRY, "faces_per_pixel")
    fragments = rasterizer(meshes, **overrides(cameras=cameras))
    return fragment_images(fragments, meshes, depth_range)


def fragment_images(fragments, meshes, depth_range) -> dict:
    """MeshFragments' outputs from the rasterizer's fragments of ``meshes`` (one image per mesh).
    Exported scripts call this too."""
    from pytorch3d.ops import interpolate_face_attributes

    pix_to_face = fragments.pix_to_face[..., :1]
    covered = pix_to_face >= 0
    depth = torch.where(covered, fragments.zbuf[..., :1], torch.zeros_like(fragments.zbuf[..., :1]))
    faces_normals = meshes.verts_normals_packed()[meshes.faces_packed()]
    normals = interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords, faces_normals)[..., 0, :]
    normals = torch.where(covered, (torch.nn.functional.normalize(normals, dim=-1) + 1.0) / 2.0,
                          torch.zeros_like(normals))
    first = meshes.mesh_to_faces_packed_first_idx().view(-1, 1, 1, 1)  # one image per mesh (checked above)
    local = torch.where(covered, pix_to_face - first, torch.full_like(pix_to_face, -1))
    per_mesh = meshes.num_faces_per_mesh().view(-1, 1, 1, 1)
    face_image = torch.where(covered, local.float() / (per_mesh - 1).clamp(min=1).float(),
                             torch.zeros_like(local, dtype=torch.float32))
    lo, hi = depth_range if depth_range is not None else (None, None)
    return {"depth": depth, "depth_image": _unit_range(fragments.zbuf[..., :1], covered, lo, hi),
            "normals": normals, "face_ids": local.float(), "face_image": face_image, "mask": covered.float()}


def _fragments_export(x) -> dict:
    fragments, images = x.name("fragments"), x.name("images")
    call = ", ".join(filter(None, [x.inputs["meshes"], keywords(x, ("cameras",))]))
    x.line(f"{fragments} = {x.inputs['rasterizer']}({call})",
           f"{images} = {x.helper(fragment_images)}({fragments}, {x.inputs['meshes']}, {x.params['depth_range']})")
    return {name: f"{images}[{name!r}]" for name in ("depth", "depth_image", "normals", "face_ids", "face_image",
                                                       "mask")}
