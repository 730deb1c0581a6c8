"""Preparing targets for fitting: normalising a raw point cloud, and drawing a random batch of target views.

``RandomViews`` is stochastic: inside a training loop it draws a new batch every iteration (from the
``Optimize`` node's seeded generator, so a run is repeatable), as the fit-a-mesh-via-rendering tutorial does.
"""
from __future__ import annotations

import torch

from nodegraph.spec import Choice, Input, Int, Output, node
from nodes.primitives import unit_fit


@node(
    category="points",
    inputs=[Input("points", "Pointclouds")],
    params=[Choice("fit", "cube", "cube: divide by the largest coordinate (the book's choice); sphere: by the "
                                  "largest distance from the centre", choices=("cube", "sphere"))],
    outputs=[Output("points", "Pointclouds", "centred at the origin, inside the unit cube (or sphere)")],
)
def NormalizePointcloud(ctx, points, fit):
    """Centre each cloud at its mean point and scale it into the unit cube (or sphere), like ``NormalizeMesh``.

    Raw scans come in their sensor's coordinates (metres, far from the origin); a sphere fitted to them starts
    at the origin with radius 1, so both must share a frame.
    """
    clouds = points.points_list()
    centers, scales = unit_fit(ctx, "points", clouds, fit,
                               "a cloud has all its points at one place; it cannot be scaled")
    return points.update_padded(torch.nn.utils.rnn.pad_sequence(
        [(p - c) / s for p, c, s in zip(clouds, centers, scales)], batch_first=True))


@node(
    category="cameras",
    stochastic=True,
    inputs=[
        Input("cameras", "Cameras", "all the target cameras (a batch of N)"),
        Input("images", "Images", "target images, one per camera (N, H, W, C)", optional=True),
        Input("images2", "Images", "more target images, one per camera (e.g. silhouettes)", optional=True),
    ],
    params=[Int("count", 2, "how many views to draw (without repeats)", min=1, max=4096)],
    outputs=[
        Output("cameras", "Cameras", "the drawn cameras (count)"),
        Output("images", "Images", "the matching target images"),
        Output("images2", "Images", "the matching images2"),
        Output("index", "Tensor", "which views were drawn"),
    ],
)
def RandomViews(ctx, cameras, images, images2, count):
    """Draw ``count`` random views out of a batch of target cameras, with their target images.

    Inside a training loop it draws again every iteration, so each step fits a different few views, as the
    PyTorch3D tutorials do (``np.random.permutation(num_views)[:num_views_per_iteration]``).
    """
    n = len(cameras)
    if count > n:
        ctx.fail("count", f"asks for {count} views but there are only {n} cameras")
    for field, value in (("images", images), ("images2", images2)):
        if value is not None and value.shape[0] != n:
            ctx.fail(field, f"has {value.shape[0]} images but there are {n} cameras")
    index = torch.randperm(n, device="cpu")[:count]  # drawn on the CPU: the same views on any device
    pick = index.to(cameras.device)
    return {"cameras": cameras[index.tolist()], "images": None if images is None else images[pick],
            "images2": None if images2 is None else images2[pick], "index": index.to(ctx.device)}
