"""The volume-fitting tutorial written directly against PyTorch3D: the baseline the graph is measured against.

It follows PyTorch3D's "Fit a volume via raymarching" tutorial (``generate_cow_renders``, ``VolumeModel``, the
pseudo-Huber colour + silhouette loss, Adam with one 10x lr drop) with the benchmark's sizes. The lr drop is
applied as ``Optimize`` does it (after ``decay_at * iterations`` steps, same optimiser), which is also where the
tutorial drops it. The parts shared with the NeRF tutorial (the data, the loss, the batch/Adam loop) are in
``_common.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch3d.renderer import EmissionAbsorptionRaymarcher, NDCMultinomialRaysampler, VolumeRenderer
from pytorch3d.structures import Volumes

from _common import TutorialLoop, huber, psnr


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


def render_all(model, cameras, chunk: int = 10):
    with torch.no_grad():
        return torch.cat([model(cameras[list(range(i, min(i + chunk, len(cameras))))])
                          for i in range(0, len(cameras), chunk)])


def train(data: dict, s: VolumeSettings, iterations: int, seed: int = 0) -> tuple[VolumeModel, float, float]:
    """The tutorial's training loop; returns the model, the loop's seconds and the final loss."""
    images, silhouettes = data["images"], data["silhouettes"]
    raysampler = NDCMultinomialRaysampler(image_width=s.image_size, image_height=s.image_size,
                                          n_pts_per_ray=s.n_pts_per_ray, min_depth=0.1, max_depth=s.extent)
    renderer = VolumeRenderer(raysampler=raysampler, raymarcher=EmissionAbsorptionRaymarcher())
    model = VolumeModel(renderer, [s.volume_size] * 3, s.extent / s.volume_size).to(data["device"])
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    loop = TutorialLoop(data, s, iterations, seed)
    for batch_cameras, batch_idx in loop:
        rendered_images, rendered_silhouettes = model(batch_cameras).split([3, 1], dim=-1)
        sil_err = huber(rendered_silhouettes[..., 0], silhouettes[batch_idx]).abs().mean()
        color_err = huber(rendered_images, images[batch_idx]).abs().mean()
        loop.step(optimizer, color_err + sil_err)
    return model, loop.seconds, loop.final_loss


def evaluate(model: VolumeModel, data: dict) -> dict:
    held = data["held_images"]
    return {"psnr_train": psnr(render_all(model, data["cameras"])[..., :3], data["images"]),
            "psnr_heldout": psnr(render_all(model, data["held_cameras"])[..., :3], held),
            "psnr_black": psnr(torch.zeros_like(held), held)}
