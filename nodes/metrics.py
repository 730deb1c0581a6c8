"""Metrics: how close renders are to their targets (PSNR of colours, IoU of silhouettes), category *metrics*.

Both detach their inputs: they measure a result, they never train it.
"""
from __future__ import annotations

import torch

from nodegraph.spec import Float, Input, Output, node


def psnr(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images clamped to [0, 1] against targets: ``-10 log10(MSE)``."""
    mse = ((images.clamp(0, 1) - targets) ** 2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def _psnr_export(x) -> dict:
    per_image = x.out("per_image")
    x.line("with torch.no_grad():",
           f"    {per_image} = {x.helper(psnr)}({x.inputs['images']}.detach(), {x.inputs['target']}.detach())")
    return {"psnr": f"float({per_image}.mean())", "per_image": per_image}


def _iou_export(x) -> dict:
    a, b, t = x.name("a"), x.name("b"), x.params["threshold"]
    inter, union, per_image = x.name("inter"), x.name("union"), x.out("per_image")
    x.line(f"{a} = {x.inputs['images']}.detach()[..., -1] > {t}",
           f"{b} = {x.inputs['target']}.detach()[..., -1] > {t}",
           f"{inter} = ({a} & {b}).flatten(1).sum(1).float()",
           f"{union} = ({a} | {b}).flatten(1).sum(1).float()",
           f"{per_image} = torch.where({union} > 0, {inter} / {union}.clamp_min(1), torch.ones_like({union}))")
    return {"iou": f"float({per_image}.mean())", "per_image": per_image}


@node(
    category="metrics",
    export=_psnr_export,
    inputs=[Input("images", "Images", "(B, H, W, C) renders"), Input("target", "Images", "(B, H, W, C) targets")],
    outputs=[Output("psnr", "Scalar", "mean over the batch of each image's PSNR, in dB"),
             Output("per_image", "Tensor", "(B,) PSNR of each image")],
)
def PSNR(ctx, images, target):
    """Peak signal-to-noise ratio of renders against targets (images clamped to [0, 1]; higher is better).

    Compare RGB with RGB: take the renderer's ``rgb`` output, not its RGBA ``images``.
    """
    if images.shape != target.shape:
        ctx.fail("target", f"shape {list(target.shape)} does not match images {list(images.shape)}")
    with torch.no_grad():
        per_image = psnr(images.detach(), target.detach())
    return {"psnr": float(per_image.mean()), "per_image": per_image}


@node(
    category="metrics",
    export=_iou_export,
    inputs=[Input("images", "Images", "rendered silhouettes (B, H, W, 1), or RGBA whose alpha is used"),
            Input("target", "Images", "target silhouettes, the same size")],
    params=[Float("threshold", 0.5, "a pixel is inside where its value exceeds this", min=0.0, max=1.0)],
    outputs=[Output("iou", "Scalar", "mean over the batch of intersection / union"),
             Output("per_image", "Tensor", "(B,) IoU of each image")],
)
def SilhouetteIoU(ctx, images, target, threshold):
    """Intersection over union of rendered and target silhouettes (1 is a perfect match)."""
    a, b = images.detach()[..., -1], target.detach()[..., -1]
    if a.shape != b.shape:
        ctx.fail("target", f"silhouettes of shape {list(b.shape)} do not match images {list(a.shape)}")
    a, b = a > threshold, b > threshold
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    per_image = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return {"iou": float(per_image.mean()), "per_image": per_image}
