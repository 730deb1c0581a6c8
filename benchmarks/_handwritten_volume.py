"""The volume-fitting tutorial written directly against PyTorch3D: the baseline the graph is measured against.

It follows PyTorch3D's "Fit a volume via raymarching" tutorial (``generate_cow_renders``, ``VolumeModel``, the
pseudo-Huber colour + silhouette loss, Adam with one 10x lr drop) with the benchmark's sizes. The lr drop is
applied as ``Optimize`` does it (after ``decay_at * iterations`` steps, same optimiser), which is also where the
tutorial drops it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.renderer import (BlendParams, EmissionAbsorptionRaymarcher, FoVPerspectiveCameras, MeshRasterizer,
                                MeshRenderer, NDCMultinomialRaysampler, PointLights, RasterizationSettings,
                                SoftPhongShader, SoftSilhouetteShader, VolumeRenderer, look_at_view_transform)
from pytorch3d.structures import Volumes


@dataclass
class VolumeSettings:
    num_views: int = 40
    image_size: int = 128
    volume_size: int = 128
    extent: float = 3.0
    n_pts_per_ray: int = 150
    lr: float = 0.1
    batch_size: int = 10
    iterations: int = 300
    decay_at: float = 0.75
    heldout_views: int = 10
    silhouette: str = "soft"


def generate_cow_renders(mesh_path: str, num_views: int, image_size: int, device, azimuth_offset: float = 0.0,
                         silhouette: str = "soft"):
    """The tutorial's data: shaded renders on black, binary silhouettes, cameras on a ring (elevation 0)."""
    mesh = load_objs_as_meshes([mesh_path], device=device)
    verts = mesh.verts_packed()
    center = verts.mean(0)
    scale = max((verts - center).abs().max(0)[0])
    mesh.offset_verts_(-center.expand(verts.shape[0], 3))
    mesh.scale_verts_(1.0 / float(scale))
    meshes = mesh.extend(num_views)
    elev = torch.linspace(0, 0, num_views)
    azim = torch.linspace(-180, 180, num_views) + 180.0 + azimuth_offset
    R, T = look_at_view_transform(dist=2.7, elev=elev, azim=azim)
    cameras = FoVPerspectiveCameras(device=device, R=R, T=T)
    lights = PointLights(device=device, location=[[0.0, 0.0, -3.0]])
    with torch.no_grad():
        raster = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
        blend = BlendParams(sigma=1e-4, gamma=1e-4, background_color=(0.0, 0.0, 0.0))
        rasterizer = MeshRasterizer(cameras=cameras, raster_settings=raster)
        renderer = MeshRenderer(rasterizer=rasterizer, shader=SoftPhongShader(device=device, cameras=cameras,
                                                                              lights=lights, blend_params=blend))
        images = renderer(meshes, cameras=cameras, lights=lights)
        if silhouette == "soft":
            sigma = 1e-4
            raster_sil = RasterizationSettings(image_size=image_size, faces_per_pixel=50,
                                               blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma)
            sil = MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=raster_sil),
                               SoftSilhouetteShader())(meshes, cameras=cameras, lights=lights)[..., 3]
            silhouettes = (sil > 1e-4).float()
        else:
            silhouettes = (rasterizer(meshes).pix_to_face[..., 0] >= 0).float()
    return cameras, images[..., :3], silhouettes


def huber(x, y, scaling=0.1):
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling ** 2)).clamp(1e-4).sqrt() - 1) * float(scaling)


class VolumeModel(torch.nn.Module):
    def __init__(self, renderer, volume_size, voxel_size):
        super().__init__()
        self.log_densities = torch.nn.Parameter(-4.0 * torch.ones(1, *volume_size))
        self.log_colors = torch.nn.Parameter(torch.zeros(3, *volume_size))
        self._voxel_size = voxel_size
        self._renderer = renderer

    def forward(self, cameras):
        batch_size = cameras.R.shape[0]
        densities = torch.sigmoid(self.log_densities)
        colors = torch.sigmoid(self.log_colors)
        volumes = Volumes(densities=densities[None].expand(batch_size, *self.log_densities.shape),
                          features=colors[None].expand(batch_size, *self.log_colors.shape),
                          voxel_size=self._voxel_size)
        return self._renderer(cameras=cameras, volumes=volumes)[0]


def psnr(images, targets):
    mse = ((images.clamp(0, 1) - targets) ** 2).flatten(1).mean(1)
    return float((-10 * torch.log10(mse)).mean())


def render_all(model, cameras, chunk: int = 10):
    with torch.no_grad():
        return torch.cat([model(cameras[list(range(i, min(i + chunk, len(cameras))))])
                          for i in range(0, len(cameras), chunk)])


def prepare(mesh_path: str, s: VolumeSettings, device) -> dict:
    """Training views and held-out views (half a camera step away), rendered once."""
    device = torch.device(device)
    cameras, images, silhouettes = generate_cow_renders(mesh_path, s.num_views, s.image_size, device,
                                                        silhouette=s.silhouette)
    held_cams, held_images, _ = generate_cow_renders(mesh_path, s.heldout_views, s.image_size, device,
                                                     azimuth_offset=180.0 / (s.num_views - 1),
                                                     silhouette=s.silhouette)
    return {"device": device, "cameras": cameras, "images": images, "silhouettes": silhouettes,
            "held_cameras": held_cams, "held_images": held_images}


def train(data: dict, s: VolumeSettings, iterations: int, seed: int = 0) -> tuple[VolumeModel, float, float]:
    """The tutorial's training loop; returns the model, the loop's seconds and the final loss."""
    device, cameras, images, silhouettes = data["device"], data["cameras"], data["images"], data["silhouettes"]
    raysampler = NDCMultinomialRaysampler(image_width=s.image_size, image_height=s.image_size,
                                          n_pts_per_ray=s.n_pts_per_ray, min_depth=0.1, max_depth=s.extent)
    renderer = VolumeRenderer(raysampler=raysampler, raymarcher=EmissionAbsorptionRaymarcher())
    model = VolumeModel(renderer, [s.volume_size] * 3, s.extent / s.volume_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    torch.manual_seed(seed)
    decay_step = int(s.decay_at * iterations)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for iteration in range(iterations):
        batch_idx = torch.randperm(len(cameras))[:s.batch_size]
        batch_cameras = FoVPerspectiveCameras(R=cameras.R[batch_idx], T=cameras.T[batch_idx],
                                              znear=cameras.znear[batch_idx], zfar=cameras.zfar[batch_idx],
                                              aspect_ratio=cameras.aspect_ratio[batch_idx],
                                              fov=cameras.fov[batch_idx], device=device)
        rendered_images, rendered_silhouettes = model(batch_cameras).split([3, 1], dim=-1)
        dev_idx = batch_idx.to(device)
        sil_err = huber(rendered_silhouettes[..., 0], silhouettes[dev_idx]).abs().mean()
        color_err = huber(rendered_images, images[dev_idx]).abs().mean()
        loss = color_err + sil_err
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration + 1 == decay_step:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
    final = float(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, time.perf_counter() - started, final


def evaluate(model: VolumeModel, data: dict) -> dict:
    held = data["held_images"]
    return {"psnr_train": psnr(render_all(model, data["cameras"])[..., :3], data["images"]),
            "psnr_heldout": psnr(render_all(model, data["held_cameras"])[..., :3], held),
            "psnr_black": psnr(torch.zeros_like(held), held)}
