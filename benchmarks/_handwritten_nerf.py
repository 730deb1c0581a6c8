"""The simple-NeRF tutorial written directly against PyTorch3D: the baseline the graph is measured against.

It follows PyTorch3D's "Fit a simple Neural Radiance Field via raymarching" tutorial (its ``NeuralRadianceField``
MLP, Monte-Carlo rays, ``sample_images_at_mc_locs``, pseudo-Huber colour + silhouette loss, Adam) with the
benchmark's sizes. One difference, shared with the graph: the 10x lr drop keeps the optimiser (as ``Optimize``
does) instead of creating a new one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch3d.renderer import (EmissionAbsorptionRaymarcher, HarmonicEmbedding, ImplicitRenderer,
                                MonteCarloRaysampler, NDCMultinomialRaysampler, RayBundle, ray_bundle_to_ray_points)

from _common import TutorialLoop, huber, psnr


@dataclass
class NerfSettings:
    num_views: int = 40
    image_size: int = 128
    n_rays_per_image: int = 750
    n_pts_per_ray: int = 128
    n_harmonic_functions: int = 60
    n_hidden_neurons: int = 256
    extent: float = 3.0
    lr: float = 1e-3
    batch_size: int = 6
    iterations: int = 3000
    decay_at: float = 0.75
    heldout_views: int = 10
    eval_pts_per_ray: int = 128
    chunk_size: int = 4096
    silhouette: str = "soft"


class NeuralRadianceField(torch.nn.Module):
    def __init__(self, n_harmonic_functions=60, n_hidden_neurons=256):
        super().__init__()
        self.harmonic_embedding = HarmonicEmbedding(n_harmonic_functions, omega_0=0.1, append_input=False)
        embedding_dim = n_harmonic_functions * 2 * 3
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(embedding_dim, n_hidden_neurons), torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(n_hidden_neurons, n_hidden_neurons), torch.nn.Softplus(beta=10.0),
        )
        self.color_layer = torch.nn.Sequential(
            torch.nn.Linear(n_hidden_neurons + embedding_dim, n_hidden_neurons), torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(n_hidden_neurons, 3), torch.nn.Sigmoid(),
        )
        self.density_layer = torch.nn.Sequential(torch.nn.Linear(n_hidden_neurons, 1), torch.nn.Softplus(beta=10.0))
        self.density_layer[0].bias.data[0] = -1.5

    def _get_densities(self, features):
        return 1 - (-self.density_layer(features)).exp()

    def _get_colors(self, features, rays_directions):
        spatial_size = features.shape[:-1]
        rays_directions_normed = torch.nn.functional.normalize(rays_directions, dim=-1)
        rays_embedding = self.harmonic_embedding(rays_directions_normed)
        rays_embedding_expand = rays_embedding[..., None, :].expand(*spatial_size, rays_embedding.shape[-1])
        return self.color_layer(torch.cat((features, rays_embedding_expand), dim=-1))

    def forward(self, ray_bundle, **kwargs):
        rays_points_world = ray_bundle_to_ray_points(ray_bundle)
        features = self.mlp(self.harmonic_embedding(rays_points_world))
        return self._get_densities(features), self._get_colors(features, ray_bundle.directions)

    def batched_forward(self, ray_bundle, n_batches=16, **kwargs):
        n_pts_per_ray = ray_bundle.lengths.shape[-1]
        spatial_size = [*ray_bundle.origins.shape[:-1], n_pts_per_ray]
        tot_samples = ray_bundle.origins.shape[:-1].numel()
        batches = torch.chunk(torch.arange(tot_samples), n_batches)
        outs = [self.forward(RayBundle(origins=ray_bundle.origins.view(-1, 3)[b],
                                       directions=ray_bundle.directions.view(-1, 3)[b],
                                       lengths=ray_bundle.lengths.view(-1, n_pts_per_ray)[b], xys=None))
                for b in batches]
        densities, colors = [torch.cat([o[i] for o in outs], dim=0).view(*spatial_size, -1) for i in (0, 1)]
        return densities, colors


def sample_images_at_mc_locs(target_images, sampled_rays_xy):
    ba = target_images.shape[0]
    dim = target_images.shape[-1]
    spatial_size = sampled_rays_xy.shape[1:-1]
    images_sampled = torch.nn.functional.grid_sample(target_images.permute(0, 3, 1, 2),
                                                     -sampled_rays_xy.view(ba, -1, 1, 2), align_corners=True)
    return images_sampled.permute(0, 2, 3, 1).view(ba, *spatial_size, dim)


def train(data: dict, s: NerfSettings, iterations: int, seed: int = 0):
    images, silhouettes = data["images"], data["silhouettes"]
    raysampler_mc = MonteCarloRaysampler(min_x=-1.0, max_x=1.0, min_y=-1.0, max_y=1.0,
                                         n_rays_per_image=s.n_rays_per_image, n_pts_per_ray=s.n_pts_per_ray,
                                         min_depth=0.1, max_depth=s.extent)
    renderer_mc = ImplicitRenderer(raysampler=raysampler_mc, raymarcher=EmissionAbsorptionRaymarcher())
    field = optimizer = None
    loop = TutorialLoop(data, s, iterations, seed)
    for batch_cameras, batch_idx in loop:
        if field is None:  # created after the first batch is drawn, as the graph's lazy learnable is
            field = NeuralRadianceField(s.n_harmonic_functions, s.n_hidden_neurons).to(data["device"])
            optimizer = torch.optim.Adam(field.parameters(), lr=s.lr)
        rendered, sampled_rays = renderer_mc(cameras=batch_cameras, volumetric_function=field)
        rendered_images, rendered_silhouettes = rendered.split([3, 1], dim=-1)
        silhouettes_at_rays = sample_images_at_mc_locs(silhouettes[batch_idx, ..., None], sampled_rays.xys)
        sil_err = huber(rendered_silhouettes, silhouettes_at_rays).abs().mean()
        colors_at_rays = sample_images_at_mc_locs(images[batch_idx], sampled_rays.xys)
        color_err = huber(rendered_images, colors_at_rays).abs().mean()
        loop.step(optimizer, color_err + sil_err)
    return field, loop.seconds, loop.final_loss


def render_full(field, cameras, s: NerfSettings):
    """Full images, a camera at a time, the field evaluated in chunks of rays (the tutorial's batched_forward)."""
    raysampler = NDCMultinomialRaysampler(image_width=s.image_size, image_height=s.image_size,
                                          n_pts_per_ray=s.eval_pts_per_ray, min_depth=0.1, max_depth=s.extent)
    renderer = ImplicitRenderer(raysampler=raysampler, raymarcher=EmissionAbsorptionRaymarcher())
    n_batches = max(1, s.image_size ** 2 // s.chunk_size)
    with torch.no_grad():
        return torch.cat([renderer(cameras=cameras[[i]], volumetric_function=lambda ray_bundle, **kw:
                                   field.batched_forward(ray_bundle, n_batches=n_batches))[0]
                          for i in range(len(cameras))])


def iou(pred, target, threshold=0.5):
    a, b = pred > threshold, target > threshold
    return float(((a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp_min(1)).mean())


def evaluate(field, data: dict, s: NerfSettings) -> dict:
    held = render_full(field, data["held_cameras"], s)
    return {"psnr_heldout": psnr(held[..., :3], data["held_images"]),
            "iou_heldout": iou(held[..., 3], data["held_silhouettes"]),
            "psnr_black": psnr(torch.zeros_like(data["held_images"]), data["held_images"])}
