"""Loss nodes: each returns one named, weighted term (``LossValue.term``) for an ``Optimize`` node.

The term is named after the loss node's id, so the loss history and the editor's plot show one curve per
loss node. Every loss has a ``weight``; wire several losses into ``Optimize.loss`` (or a ``LossSum``) and
their weighted sum is minimised. Inputs of the wrong kind or mismatched shapes stop the run with an error
naming the input.
"""
from __future__ import annotations

from typing import Any

import torch
from pytorch3d.loss import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from pytorch3d.structures import Pointclouds

from nodegraph.spec import Choice, Float, Input, Int, Output, node
from nodegraph.values import LossValue

_WEIGHT = Float("weight", 1.0, "the term's weight in the total loss", min=0.0)
_LOSS = [Output("loss", "Loss", "the weighted term")]


def _tensor(ctx, field: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        ctx.fail(field, f"expects a tensor (Images or Tensor), got {type(value).__name__}")
    return value


def _same_shape(ctx, x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        hint = ""
        if x.dim() == y.dim() == 4 and x.shape[:3] == y.shape[:3]:
            hint = "; use SplitRGBA to compare only RGB or alpha"
        ctx.fail("target", f"shape {list(y.shape)} does not match input {list(x.shape)}{hint}")


# ------------------------------------------------------------------------------------------ export forms


def _term(code: str, *imports: str):
    """An export form for a loss: ``code`` (placeholders of inputs and params) is the unweighted term."""
    def form(x):
        x.imports(*imports)
        fields = {**{k: str(v) for k, v in x.inputs.items()}, **x.params}
        return x.term(code.format(**fields), x.params["weight"])
    return form


def _chamfer_export(x):
    x.imports("from pytorch3d.loss import chamfer_distance")
    pad = x.helper(padded_points)
    (xp, xl), (yp, yl) = (x.name("x"), x.name("x_lengths")), (x.name("y"), x.name("y_lengths"))
    x.line(f"{xp}, {xl} = {pad}({x.inputs['x']})", f"{yp}, {yl} = {pad}({x.inputs['y']})")
    return x.term(f"chamfer_distance({xp}, {yp}, x_lengths={xl}, y_lengths={yl}, norm={x.params['norm']}, "
                  f"point_reduction={x.params['point_reduction']})[0]", x.params["weight"])


def _huber_export(x):
    h = x.helper(huber)
    return x.term(f"{h}({x.inputs['input']}, {x.inputs['target']}, {x.params['scaling']}).abs().mean()",
                  x.params["weight"])


def _loss_sum_export(x):
    x.line("# (its terms join the training loss, scaled by its weight)")
    return x.combine(x.inputs["losses"], x.params["weight"])


# ------------------------------------------------------------------------------------------ points


def padded_points(value: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Padded points (B, N, D) and lengths (or None) from Pointclouds or an (N, D) / (B, N, D) point tensor."""
    if isinstance(value, Pointclouds):
        return value.points_padded(), value.num_points_per_cloud()
    return (value[None] if value.dim() == 2 else value), None


def _points(ctx, field: str, value: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Padded points (B, N, D) and lengths (or None) from Pointclouds or a point tensor."""
    if isinstance(value, Pointclouds):
        return padded_points(value)
    if isinstance(value, torch.Tensor):
        if value.dim() == 2:
            value = value[None]
        if value.dim() != 3:
            ctx.fail(field, f"a point tensor must be (N, D) or (B, N, D), got shape {list(value.shape)}")
        return value, None
    ctx.fail(field, f"expects Pointclouds or a point tensor, got {type(value).__name__} "
                    f"(sample points from a mesh with SamplePoints)")


@node(
    category="losses",
    inputs=[Input("x", "Any", "Pointclouds or a (B, N, 3) point tensor"),
            Input("y", "Any", "Pointclouds or a (B, M, 3) point tensor")],
    params=[_WEIGHT,
            Int("norm", 2, "distance: 2 squared Euclidean, 1 absolute", min=1, max=2),
            Choice("point_reduction", "mean", "average or sum over points", choices=("mean", "sum"))],
    outputs=_LOSS,
    aliases=("chamfer_distance",),
    export=_chamfer_export,
)
def ChamferLoss(ctx, x, y, weight, norm, point_reduction):
    """Chamfer distance between two point sets (PyTorch3D ``chamfer_distance``).

    For every point, the squared distance to the nearest point of the other set, averaged both ways and
    over the batch. Used to pull points sampled from a deforming mesh onto a target surface.
    """
    xp, xl = _points(ctx, "x", x)
    yp, yl = _points(ctx, "y", y)
    if xp.shape[0] != yp.shape[0]:
        ctx.fail("y", f"has a batch of {yp.shape[0]} point sets but x has {xp.shape[0]}")
    if xp.shape[2] != yp.shape[2]:
        ctx.fail("y", f"points have {yp.shape[2]} coordinates but x's have {xp.shape[2]}")
    value, _ = chamfer_distance(xp, yp, x_lengths=xl, y_lengths=yl, norm=norm, point_reduction=point_reduction)
    return LossValue.term(ctx.node_id, value, weight)


# ------------------------------------------------------------------------------------------ mesh priors


@node(
    category="losses",
    inputs=[Input("mesh", "Meshes")],
    params=[_WEIGHT, Float("target_length", 0.0, "the edge length to pull towards", min=0.0)],
    outputs=_LOSS,
    aliases=("mesh_edge_loss",),
    export=_term("mesh_edge_loss({mesh}, target_length={target_length})", "from pytorch3d.loss import mesh_edge_loss"),
)
def MeshEdgeLoss(ctx, mesh, weight, target_length):
    """Mean squared difference of edge lengths from ``target_length`` (PyTorch3D ``mesh_edge_loss``).

    A regulariser that keeps a deforming mesh's triangles small and even.
    """
    return LossValue.term(ctx.node_id, mesh_edge_loss(mesh, target_length=target_length), weight)


@node(
    category="losses",
    inputs=[Input("mesh", "Meshes")],
    params=[_WEIGHT],
    outputs=_LOSS,
    aliases=("mesh_normal_consistency",),
    export=_term("mesh_normal_consistency({mesh})", "from pytorch3d.loss import mesh_normal_consistency"),
)
def MeshNormalConsistency(ctx, mesh, weight):
    """How much the normals of neighbouring faces disagree (PyTorch3D ``mesh_normal_consistency``).

    A regulariser that keeps a deforming surface smooth, without folds.
    """
    return LossValue.term(ctx.node_id, mesh_normal_consistency(mesh), weight)


@node(
    category="losses",
    inputs=[Input("mesh", "Meshes")],
    params=[_WEIGHT, Choice("method", "uniform", "Laplacian weights: uniform, cotangent, or cotangent "
                                                 "curvature", choices=("uniform", "cot", "cotcurv"))],
    outputs=_LOSS,
    aliases=("mesh_laplacian_smoothing",),
    export=_term("mesh_laplacian_smoothing({mesh}, method={method})", "from pytorch3d.loss import mesh_laplacian_smoothing"),
)
def MeshLaplacianSmoothing(ctx, mesh, weight, method):
    """Laplacian smoothing: each vertex's distance from the mean of its neighbours
    (PyTorch3D ``mesh_laplacian_smoothing``). A regulariser against spikes and noise.
    """
    return LossValue.term(ctx.node_id, mesh_laplacian_smoothing(mesh, method=method), weight)


# ------------------------------------------------------------------------------------------ images / tensors

_PAIR = [Input("input", "Any", "the prediction: Images or a Tensor"),
         Input("target", "Any", "the target, the same shape as input")]


@node(category="losses", inputs=_PAIR, params=[_WEIGHT], outputs=_LOSS,
      export=_term("(({input} - {target}) ** 2).mean()"))
def MSELoss(ctx, input, target, weight):
    """Mean squared error between a prediction and a target (images or tensors of the same shape)."""
    x, y = _tensor(ctx, "input", input), _tensor(ctx, "target", target)
    _same_shape(ctx, x, y)
    return LossValue.term(ctx.node_id, ((x - y) ** 2).mean(), weight)


@node(category="losses", inputs=_PAIR, params=[_WEIGHT], outputs=_LOSS,
      export=_term("({input} - {target}).abs().mean()"))
def L1Loss(ctx, input, target, weight):
    """Mean absolute error between a prediction and a target (images or tensors of the same shape)."""
    x, y = _tensor(ctx, "input", input), _tensor(ctx, "target", target)
    _same_shape(ctx, x, y)
    return LossValue.term(ctx.node_id, (x - y).abs().mean(), weight)


def huber(x: torch.Tensor, y: torch.Tensor, scaling: float = 0.1) -> torch.Tensor:
    """The tutorials' smooth-L1 (pseudo-Huber) error, elementwise: quadratic near 0, linear beyond ``scaling``."""
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling**2)).clamp(1e-4).sqrt() - 1) * float(scaling)


@node(category="losses", inputs=_PAIR,
      params=[_WEIGHT, Float("scaling", 0.1, "where the error turns from quadratic to linear", min=1e-9)],
      outputs=_LOSS, export=_huber_export)
def HuberLoss(ctx, input, target, weight, scaling):
    """Mean smooth-L1 (pseudo-Huber) error, the form of PyTorch3D's volume and NeRF tutorials:
    ``((1 + (x - y)^2 / s^2).sqrt() - 1) * s``. Robust to outliers, smooth at zero.
    """
    x, y = _tensor(ctx, "input", input), _tensor(ctx, "target", target)
    _same_shape(ctx, x, y)
    return LossValue.term(ctx.node_id, huber(x, y, scaling).abs().mean(), weight)


def _alpha(ctx, field: str, images: Any) -> torch.Tensor:
    x = _tensor(ctx, field, images)
    if x.dim() == 4 and x.shape[-1] in (1, 4):
        return x[..., -1]
    if x.dim() == 3:
        return x
    ctx.fail(field, f"expects RGBA (B, H, W, 4), alpha (B, H, W, 1) or (B, H, W) silhouettes, got shape "
                    f"{list(x.shape)}")


@node(
    category="losses",
    inputs=[Input("images", "Images", "rendered silhouettes: RGBA (alpha is used) or one channel"),
            Input("target", "Images", "target silhouettes, RGBA or one channel, the same size")],
    params=[_WEIGHT, Choice("reduction", "mean", "mean or sum of the squared differences (the camera-"
                                                  "position tutorial sums)", choices=("mean", "sum"))],
    outputs=_LOSS,
    export=lambda x: x.term(f"(({x.inputs['images']}[..., -1] - {x.inputs['target']}[..., -1]) ** 2)"
                            f".{'sum' if x.fixed('reduction') == 'sum' else 'mean'}()", x.params["weight"]),
)
def SilhouetteLoss(ctx, images, target, weight, reduction):
    """Squared difference between rendered and target silhouettes (the alpha channel of RGBA renders).

    Pair it with ``SoftSilhouetteShader``, whose soft edges give gradients with respect to shape and camera.
    """
    x, y = _alpha(ctx, "images", images), _alpha(ctx, "target", target)
    if x.shape != y.shape:
        ctx.fail("target", f"silhouettes of shape {list(y.shape)} do not match the rendered {list(x.shape)}")
    sq = (x - y) ** 2
    return LossValue.term(ctx.node_id, sq.sum() if reduction == "sum" else sq.mean(), weight)


# ------------------------------------------------------------------------------------------ combining


@node(
    category="losses",
    inputs=[Input("losses", "Loss", "the losses to add (each keeps its own weight)", multiple=True)],
    params=[_WEIGHT],
    outputs=_LOSS,
    export=_loss_sum_export,
)
def LossSum(ctx, losses, weight):
    """The weighted sum of several losses, as one loss; each term still shows in the loss history.

    Useful to hand a group of terms to several ``Optimize`` nodes, or to scale a group at once.
    """
    if not losses:
        ctx.fail("losses", "connect at least one loss")
    total = LossValue.combine(losses)
    return LossValue(weight * total.total, total.terms)


@node(
    category="losses",
    inputs=[Input("cameras", "Cameras"), Input("target", "Cameras", "as many cameras, or one")],
    params=[_WEIGHT],
    outputs=_LOSS,
    export=lambda x: x.term(f"{x.helper(camera_distance)}({x.inputs['cameras']}, {x.inputs['target']})",
                            x.params["weight"]),
)
def CameraDistanceLoss(ctx, cameras, target, weight):
    """How far two camera batches are apart: ``(1 - so3_relative_angle(R1, R2, cos_angle=True)).mean()`` plus the
    mean squared translation difference (the bundle-adjustment tutorial's ``calc_camera_distance``)."""
    if len(target) not in (1, len(cameras)):
        ctx.fail("target", f"has {len(target)} cameras but cameras has {len(cameras)}")
    return LossValue.term(ctx.node_id, camera_distance(cameras, target), weight)


def camera_distance(cameras, target) -> torch.Tensor:
    """``(1 - cos(relative angle of R1, R2)).mean()`` + the mean squared translation difference (``target``: as
    many cameras or one). Exported scripts call this too."""
    from pytorch3d.transforms import so3_relative_angle

    R1, R2 = cameras.R, target.R.to(cameras.device).expand_as(cameras.R)
    T1, T2 = cameras.T, target.T.to(cameras.device).expand_as(cameras.T)
    rotation = (1.0 - so3_relative_angle(R1, R2, cos_angle=True)).mean()
    translation = ((T1 - T2) ** 2).sum(1).mean()
    return rotation + translation
