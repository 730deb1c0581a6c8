"""Image batches: split channels, lay out grids, show them. Images are float (B, H, W, C) in [0, 1]."""
from __future__ import annotations

import math

import torch

from nodegraph.spec import Float, Input, Int, Output, node


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
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        ctx.fail(field, f"expects images (B, H, W, C) with C = 1, 3 or 4, got {shape}")
    return images


@node(
    category="images",
    inputs=[Input("images", "Images", "(B, H, W, 4)")],
    outputs=[Output("rgb", "Images", "(B, H, W, 3)"), Output("alpha", "Images", "(B, H, W, 1): the silhouette")],
)
def SplitRGBA(ctx, images):
    """Split RGBA images into colour and alpha (for a silhouette render, alpha is the silhouette)."""
    check_images(ctx, "images", images)
    if images.shape[-1] != 4:
        ctx.fail("images", f"expects 4 channels (RGBA), got {images.shape[-1]}")
    return {"rgb": images[..., :3], "alpha": images[..., 3:]}


@node(
    category="images",
    inputs=[Input("images", "Images", "image batches, laid out in link order", multiple=True)],
    params=[
        Int("cols", 0, "images per row; 0: about square", min=0, max=4096),
        Float("fill", 1.0, "value of empty cells and padding", min=0.0, max=1.0),
        Int("padding", 0, "pixels between cells", min=0, max=256, unit="px"),
    ],
    outputs=[Output("image", "Images", "(1, H', W', C)")],
)
def ImageGrid(ctx, images, cols, fill, padding):
    """Lay out every image of every connected batch in one grid image (RGBA drops to RGB if mixed)."""
    if not images:
        ctx.fail("images", "connect at least one image batch")
    for batch in images:
        check_images(ctx, "images", batch)
    sizes = {tuple(b.shape[1:3]) for b in images}
    if len(sizes) > 1:
        ctx.fail("images", f"all images must have one size to share a grid, got {sorted(sizes)}")
    channels = {b.shape[-1] for b in images}
    c = channels.pop() if len(channels) == 1 else (3 if channels != {1} else 1)
    batch = torch.cat([to_channels(b, c) for b in images])
    return grid(batch, cols, fill, padding)


@node(
    category="preview",
    preview=True,
    inputs=[Input("images", "Images")],
)
def PreviewImage(ctx, images):
    """Show images in the editor (a batch as a grid). Inside a training loop it is a tap, shown every few steps."""
    check_images(ctx, "images", images)
    ctx.preview_image(images)
