"""Data for fitting volumes and fields: target views of a mesh, random camera minibatches, target colours at
Monte-Carlo ray locations, and turntable cameras for showing a trained result.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from pytorch3d.renderer import (BlendParams, FoVPerspectiveCameras, MeshRasterizer, MeshRenderer, PointLights,
                                RasterizationSettings, SoftPhongShader, SoftSilhouetteShader,
                                look_at_view_transform)
from pytorch3d.transforms import so3_exp_map

from nodegraph.memory import ensure_fits
from nodegraph.raster import BACKENDS, BackendMeshRasterizer, BackendSoftPhongShader
from nodegraph.spec import Bool, Choice, Float, Input, Int, Output, Vec3, node

from ._common import draw_views, fit_scales, unit_fit

MAX_VIEWS = 4096

# ------------------------------------------------------------------------------------------ target views


def view_cameras(num_views: int, azimuth_range: float, azimuth_offset: float, elevation: float, dist: float,
                 fov: float, device) -> FoVPerspectiveCameras:
    """The tutorials' ring of cameras: azimuths ``linspace(-range, range, n) + 180 + offset`` at one elevation."""
    elev = torch.full((num_views,), elevation, device=device)
    azim = torch.linspace(-azimuth_range, azimuth_range, num_views, device=device) + 180.0 + azimuth_offset
    R, T = look_at_view_transform(dist=dist, elev=elev, azim=azim, device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)


@node(
    category="datasets",
    inputs=[Input("mesh", "Meshes", "a textured mesh (the first of the batch is used)")],
    params=[
        Int("num_views", 40, "cameras on a ring around the mesh", min=1, max=MAX_VIEWS),
        Int("image_size", 128, "square images of this many pixels a side", min=8, max=2048, unit="px"),
        Float("azimuth_range", 180.0, "azimuths span [-range, range] around the back (+180)", min=0.0,
              max=180.0, unit="deg"),
        Float("azimuth_offset", 0.0, "turn every camera by this much (e.g. half a step for held-out views)",
              unit="deg"),
        Float("elevation", 0.0, "camera elevation", min=-90.0, max=90.0, unit="deg"),
        Float("dist", 2.7, "camera distance from the origin", min=1e-3, unit="world units"),
        Float("fov", 60.0, "field of view", min=1.0, max=179.0, unit="deg"),
        Bool("normalize", True, "centre the mesh and scale it into [-1, 1] first, as the tutorials do"),
        Vec3("light_location", (0.0, 0.0, -3.0), "point light position"),
        Choice("silhouette", "soft", "soft: the tutorial's blurred 50-faces-per-pixel pass, thresholded; hard: "
                                     "the covered pixels of the shaded pass (half the work, for CPU runs)",
               choices=("soft", "hard")),
        Choice("backend", "auto", "who rasterizes and shades: auto = the compiled CPU kernels on a CPU, "
                                  "PyTorch3D's own on CUDA; pytorch3d forces PyTorch3D's (the same fragments, "
                                  "the same image to float rounding)", choices=BACKENDS),
    ],
    outputs=[
        Output("images", "Images", "(num_views, S, S, 3) shaded renders on black"),
        Output("silhouettes", "Images", "(num_views, S, S, 1) binary silhouettes"),
        Output("cameras", "Cameras", "the num_views FoVPerspectiveCameras"),
    ],
    export=lambda x: _target_views_export(x),
)
def TargetViews(ctx, mesh, num_views, image_size, azimuth_range, azimuth_offset, elevation, dist, fov, normalize,
                light_location, silhouette, backend):
    """Render a mesh from a ring of cameras: the training data of the volume and NeRF tutorials
    (their ``generate_cow_renders``).

    Soft-Phong shaded images on a black background, binary silhouettes, and the cameras. A second
    ``TargetViews`` with ``azimuth_offset`` set to half the camera spacing gives held-out views for evaluation.
    """
    if mesh.textures is None:
        ctx.fail("mesh", "has no texture or colours to render; add VertexColors or load a textured mesh")
    needed = num_views * image_size ** 2 * (50 if silhouette == "soft" else 1) * 4 * 8  # fragments per pixel
    ensure_fits(ctx, "num_views", needed, f"{num_views} views of {image_size}x{image_size} px",
                "render fewer or smaller views")
    if normalize:
        unit_fit(ctx, "mesh", mesh[0].verts_list(), "cube", "has all its vertices at one point; it cannot be "
                                                           "normalized")
    return target_views(mesh, num_views, image_size, azimuth_range, azimuth_offset, elevation, dist, fov,
                        normalize, light_location, silhouette, ctx.device,
                        rasterizer=partial(BackendMeshRasterizer, backend=backend),
                        phong=partial(BackendSoftPhongShader, backend=backend))


def target_views(mesh, num_views: int, image_size: int, azimuth_range: float, azimuth_offset: float,
                 elevation: float, dist: float, fov: float, normalize: bool, light_location, silhouette: str,
                 device, rasterizer: Callable = MeshRasterizer, phong: Callable = SoftPhongShader) -> dict:
    """TargetViews without its checks: images, silhouettes and cameras of the first mesh (scripts call it).

    ``rasterizer`` and ``phong`` make the rasterizers and the Phong shader: PyTorch3D's classes, or the node's
    backend-choosing subclasses of them (same arguments, same fragments).
    """
    first = mesh[0].to(device)
    if normalize:  # into the unit cube, as the tutorials do (scaled by a Python float, as they do)
        (center,), (scale,) = fit_scales(first.verts_list(), "cube")
        first = first.offset_verts(-center.expand(first.num_verts_per_mesh()[0], 3)).scale_verts(1.0 / float(scale))
    meshes = first.extend(num_views)
    cameras = view_cameras(num_views, azimuth_range, azimuth_offset, elevation, dist, fov, device)
    lights = PointLights(location=[light_location], device=device)
    with torch.no_grad():
        raster = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
        blend = BlendParams(sigma=1e-4, gamma=1e-4, background_color=(0.0, 0.0, 0.0))
        fragments = rasterizer(cameras=cameras, raster_settings=raster)(meshes)
        shader = phong(device=device, cameras=cameras, lights=lights, blend_params=blend)
        shaded = shader(fragments, meshes, cameras=cameras, lights=lights)
        if silhouette == "soft":
            sigma = 1e-4
            raster_sil = RasterizationSettings(image_size=image_size, faces_per_pixel=50,
                                               blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma)
            sil = MeshRenderer(rasterizer(cameras=cameras, raster_settings=raster_sil),
                               SoftSilhouetteShader())(meshes, cameras=cameras, lights=lights)[..., 3:] > 1e-4
        else:
            sil = fragments.pix_to_face[..., :1] >= 0
    return {"images": shaded[..., :3].contiguous(), "silhouettes": sil.float(), "cameras": cameras}


def _target_views_export(x) -> dict:
    views, p = x.name("views"), x.params
    x.skip("backend")  # the script renders with PyTorch3D's classes, target_views' defaults
    names = ("num_views", "image_size", "azimuth_range", "azimuth_offset", "elevation", "dist", "fov", "normalize",
             "light_location", "silhouette")
    x.line(f"{views} = {x.helper(target_views)}({x.inputs['mesh']}, {', '.join(p[n] for n in names)}, device)")
    return {k: f"{views}[{k!r}]" for k in ("images", "silhouettes", "cameras")}


def _camera_batch_export(x) -> dict:
    """``randperm(n)[:batch_size]`` on the CPU (``draw_views``), then the picked cameras, images, silhouettes."""
    cams, pick = x.inputs["cameras"], x.name("pick")
    x.line(f"{pick} = torch.randperm(len({cams}), device='cpu')[:{x.params['batch_size']}]",
           f"{x.out('cameras')} = {cams}[{pick}.to({cams}.device)]")
    for port in ("images", "silhouettes"):
        value = x.inputs[port]
        x.line(f"{x.out(port)} = " + ("None" if value is None else f"{value}[{pick}.to({value}.device)]"))
    x.line(f"{x.out('indices')} = {pick}.to(device)")
    return None


def sample_at_rays(images: torch.Tensor, ray_bundle) -> torch.Tensor:
    """Images read bilinearly at the rays' ``xys`` (the NeRF tutorial's ``sample_images_at_mc_locs``)."""
    xys = ray_bundle.xys
    b, c = images.shape[0], images.shape[-1]
    spatial = xys.shape[1:-1]
    sampled = F.grid_sample(images.permute(0, 3, 1, 2), -xys.reshape(b, -1, 1, 2), align_corners=True)
    out = sampled.permute(0, 2, 3, 1).reshape(b, *spatial, c)
    return out[:, :, None] if len(spatial) == 1 else out


# ------------------------------------------------------------------------------------------ minibatches


@node(
    category="datasets",
    stochastic=True,
    inputs=[Input("cameras", "Cameras"),
            Input("images", "Images", "images of the same views, picked alongside", optional=True),
            Input("silhouettes", "Images", "silhouettes of the same views, picked alongside", optional=True)],
    params=[Int("batch_size", 10, "views per batch (all of them when there are fewer)", min=1, max=MAX_VIEWS)],
    outputs=[Output("cameras", "Cameras", "the picked cameras"),
             Output("images", "Images", "their images (None when not connected)"),
             Output("silhouettes", "Images", "their silhouettes (None when not connected)"),
             Output("indices", "Tensor", "(batch_size,) the picked view indices")],
    export=lambda x: _camera_batch_export(x),
)
def RandomCameraBatch(ctx, cameras, images, silhouettes, batch_size):
    """Pick a random minibatch of views (``randperm(n)[:batch_size]``) with their images and silhouettes.

    Stochastic: inside a training loop every iteration picks another batch, as the tutorials' loops do.
    """
    return draw_views(ctx, cameras, batch_size, images=images, silhouettes=silhouettes)


@node(
    category="datasets",
    inputs=[Input("images", "Images", "(B, H, W, C) targets, one per camera"),
            Input("ray_bundle", "RayBundle", "rays cast from the same B cameras")],
    outputs=[Output("images", "Images", "(B, n, 1, C) for n Monte-Carlo rays; (B, H, W, C) for a ray grid")],
    export=lambda x: f"{x.helper(sample_at_rays)}({x.inputs['images']}, {x.inputs['ray_bundle']})",
)
def SampleImagesAtRays(ctx, images, ray_bundle):
    """Read images at the rays' screen locations (``xys``), bilinearly: the target colour of each sampled ray.

    The NeRF tutorial's ``sample_images_at_mc_locs``: compare the result with the renderer's output on the
    same rays.
    """
    xys = ray_bundle.xys
    if images.shape[0] != xys.shape[0]:
        ctx.fail("images", f"has {images.shape[0]} images but the rays come from {xys.shape[0]} cameras")
    return sample_at_rays(images, ray_bundle)


# ------------------------------------------------------------------------------------------ turntable


def turntable_rotations(n_frames: int, elevation_deg: float, device) -> torch.Tensor:
    """(n, 3, 3) rotations of a camera circling the y axis, from ``so3_exp_map`` as the tutorials do."""
    angles = torch.linspace(0.0, 2.0 * math.pi, n_frames + 1, device=device)[:-1]
    yaw = torch.zeros(n_frames, 3, device=device)
    yaw[:, 1] = angles
    pitch = torch.zeros(n_frames, 3, device=device)
    pitch[:, 0] = math.radians(elevation_deg)
    return so3_exp_map(yaw) @ so3_exp_map(pitch)


def _turntable_export(x) -> str:
    x.imports("from pytorch3d.renderer import FoVPerspectiveCameras")
    p = x.params
    return (f"FoVPerspectiveCameras(R={x.helper(turntable_rotations)}({p['n_frames']}, {p['elevation']}, device), "
            f"T=torch.tensor([[0.0, 0.0, {p['dist']}]], device=device).expand({p['n_frames']}, 3), fov={p['fov']}, "
            "device=device)")


@node(
    category="datasets",
    params=[
        Int("n_frames", 40, "frames over one full turn", min=1, max=MAX_VIEWS),
        Float("dist", 2.7, "camera distance from the origin", min=1e-3, unit="world units"),
        Float("elevation", 0.0, "camera elevation", min=-89.0, max=89.0, unit="deg"),
        Float("fov", 60.0, "field of view", min=1.0, max=179.0, unit="deg"),
    ],
    outputs=[Output("cameras", "Cameras", "n_frames FoVPerspectiveCameras circling the origin")],
    export=lambda x: _turntable_export(x),
)
def TurntableCameras(ctx, n_frames, dist, elevation, fov):
    """Cameras circling the object, looking at the origin: rotations from ``so3_exp_map`` of angles about the y
    axis, as the tutorials render a trained volume or field. Feed them to a renderer and its images to
    ``SaveAnimation`` (a GIF) and ``SaveImage`` (a grid).
    """
    R = turntable_rotations(n_frames, elevation, ctx.device)
    T = torch.tensor([[0.0, 0.0, dist]], device=ctx.device).expand(n_frames, 3)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=ctx.device)
