"""Point clouds: normalising a raw scan into the unit cube (or sphere) so a fitted shape shares its frame."""
from __future__ import annotations

import torch

from nodegraph.spec import Choice, Input, Output, node

from ._common import fit_scales, unit_fit


def _normalize_export(x) -> str:
    points, clouds, centers, scales = x.inputs["points"], x.name("clouds"), x.name("centers"), x.name("scales")
    x.line(f"{clouds} = {points}.points_list()",
           f"{centers}, {scales} = {x.helper(fit_scales)}({clouds}, {x.params['fit']})")
    return (f"{points}.update_padded(torch.nn.utils.rnn.pad_sequence([(p - c) / s for p, c, s in "
            f"zip({clouds}, {centers}, {scales})], batch_first=True))")


@node(
    category="points",
    export=_normalize_export,
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
