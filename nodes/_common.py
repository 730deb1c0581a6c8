"""Helpers that several node families share; no nodes are declared here.

Images are float (B, H, W, C) in [0, 1] (images, save and preview nodes read them with these); ``unit_fit``
normalises meshes, point clouds and target meshes alike; ``draw_views`` picks random views for the cameras and
datasets nodes.
"""
from __future__ import annotations

import math

import torch

# -------------------------------------------------------------------------------------------- images


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (B, H, W, C) between grey (1), RGB (3) and RGBA (4): grey repeats, alpha is dropped or set to 1."""
    c = images.shape[-1]
    if c == channels:
        return images
    if c == 1:
        rgb = images.expand(*images.shape[:-1], 3)
    else:
        rgb = images[..., :3]
    if channels == 3:
        return rgb
    if channels == 4:
        return torch.cat([rgb, torch.ones_like(rgb[..., :1])], dim=-1)
    return rgb.mean(dim=-1, keepdim=True)


def grid(images: torch.Tensor, cols: int = 0, fill: float = 1.0, padding: int = 0) -> torch.Tensor:
    """Lay a (B, H, W, C) batch out as one (1, rows*H, cols*W, C) image, row by row; 0 cols: about square."""
    b, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(b))
    cols = min(cols, b)
    rows = math.ceil(b / cols)
    cell_h, cell_w = h + padding, w + padding
    out = images.new_full((rows * cell_h - padding, cols * cell_w - padding, c), fill)
    for i in range(b):
        r, k = divmod(i, cols)
        out[r * cell_h:r * cell_h + h, k * cell_w:k * cell_w + w] = images[i]
    return out[None]


def check_images(ctx, field: str, images) -> torch.Tensor:
    """``images`` if it is a (B, H, W, C) batch with 1, 3 or 4 channels; otherwise fail ``field``."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        ctx.fail(field, f"expects images (B, H, W, C) with C = 1, 3 or 4, got {shape}")
    return images


# -------------------------------------------------------------------------------------------- geometry


def unit_fit(ctx, field: str, parts: list[torch.Tensor], fit: str, degenerate: str):
    """(centres, scales), one each per (P, 3) tensor of ``parts``: its mean point, and what to divide the centred
    points by to put them in the unit sphere (``fit="sphere"``: the largest distance from the centre) or cube
    (``"cube"``: the largest coordinate). A zero scale fails ``field`` with the message ``degenerate``.
    NormalizeMesh and NormalizePointcloud both normalise with it."""
    centers, scales = fit_scales(parts, fit)
    if (scales <= 0).any():
        ctx.fail(field, degenerate)
    return centers, scales


def fit_scales(parts: list[torch.Tensor], fit: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``unit_fit`` without its check: each part's mean point and its largest distance (sphere) or coordinate
    (cube) from it. Exported scripts call this."""
    centers = torch.stack([p.mean(0) for p in parts])
    if fit == "sphere":
        scales = torch.stack([(p - c).norm(dim=1).max() for p, c in zip(parts, centers)])
    else:
        scales = torch.stack([(p - c).abs().max() for p, c in zip(parts, centers)])
    return centers, scales


# -------------------------------------------------------------------------------------------- views


def draw_views(ctx, cameras, count: int, **per_view) -> dict:
    """``count`` random views (all of them when there are fewer): ``randperm(n)[:count]`` drawn on the CPU, so
    the same views on any device. Returns the picked ``cameras``, each connected ``per_view`` input (images, one
    per camera; a field that does not match the cameras fails) picked alike (None stays None), and ``indices``
    on the run's device. RandomViews and RandomCameraBatch draw with it."""
    n = len(cameras)
    for field, value in per_view.items():
        if value is not None and value.shape[0] != n:
            ctx.fail(field, f"has {value.shape[0]} views but there are {n} cameras")
    index = torch.randperm(n, device="cpu")[:count]
    return {"cameras": cameras[index.to(cameras.device)],
            **{field: None if value is None else value[index.to(value.device)] for field, value in per_view.items()},
            "indices": index.to(ctx.device)}
