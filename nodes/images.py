"""Image batches: split channels, lay out grids. Images are float (B, H, W, C) in [0, 1]."""
from __future__ import annotations

import torch

from nodegraph.spec import Float, Input, Int, Output, node

from ._common import check_images, grid, to_channels


@node(
    category="images",
    inputs=[Input("images", "Images", "(B, H, W, 4)")],
    outputs=[Output("rgb", "Images", "(B, H, W, 3)"), Output("alpha", "Images", "(B, H, W, 1): the silhouette")],
    export=lambda x: {"rgb": f"{x.inputs['images']}[..., :3]", "alpha": f"{x.inputs['images']}[..., 3:]"},
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
    export=lambda x: f"{x.helper(image_grid)}([{', '.join(x.inputs['images'])}], {x.params['cols']}, "
                     f"{x.params['fill']}, {x.params['padding']})",
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
    return image_grid(images, cols, fill, padding)


def image_grid(images: list[torch.Tensor], cols: int, fill: float, padding: int) -> torch.Tensor:
    """Every image of every batch in one grid; mixed channels meet at RGB (grey when all are grey)."""
    channels = {b.shape[-1] for b in images}
    c = channels.pop() if len(channels) == 1 else (3 if channels != {1} else 1)
    batch = torch.cat([to_channels(b, c) for b in images])
    return grid(batch, cols, fill, padding)
