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
    if count > len(cameras):
        ctx.fail("count", f"asks for {count} views but there are only {len(cameras)} cameras")
    picked = draw_views(ctx, cameras, count, images=images, images2=images2)
    picked["index"] = picked.pop("indices")
    return picked
