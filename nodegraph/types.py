"""The closed vocabulary of port types, close to PyTorch3D's structures.

A link is legal only between equal types, or into an ``Any`` input (previews, save nodes that take anything).
Each type has a colour for the editor and a one-line meaning for its tooltip. :func:`summarize` describes a
value for port inspection (type, shapes, dtype, device, min/mean/max).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class PortType:
    name: str
    color: str
    doc: str


_TYPES = [
    PortType("Meshes", "#4caf50", "pytorch3d.structures.Meshes: a batch of triangle meshes"),
    PortType("Pointclouds", "#8bc34a", "pytorch3d.structures.Pointclouds: a batch of point clouds"),
    PortType("Volumes", "#009688", "pytorch3d.structures.Volumes: a batch of voxel grids"),
    PortType("Cameras", "#2196f3", "a batch of PyTorch3D cameras"),
    PortType("Lights", "#ffc107", "PyTorch3D lights"),
    PortType("Materials", "#ff9800", "PyTorch3D Materials"),
    PortType("RasterSettings", "#9e9e9e", "mesh RasterizationSettings"),
    PortType("PointsRasterSettings", "#9e9e9e", "PointsRasterizationSettings"),
    PortType("BlendParams", "#bdbdbd", "BlendParams: sigma, gamma, background colour"),
    PortType("Rasterizer", "#607d8b", "a MeshRasterizer or PointsRasterizer"),
    PortType("Shader", "#795548", "a mesh shader"),
    PortType("Compositor", "#a1887f", "a points compositor"),
    PortType("Renderer", "#3f51b5", "a renderer: rasterizer + shader, or raysampler + raymarcher"),
    PortType("Raysampler", "#00bcd4", "a PyTorch3D raysampler"),
    PortType("RayBundle", "#26c6da", "a RayBundle: origins, directions, lengths, xys"),
    PortType("Raymarcher", "#0097a7", "a PyTorch3D raymarcher"),
    PortType("ImplicitFunction", "#673ab7", "a callable field: (ray_bundle) -> (densities, features)"),
    PortType("Images", "#e91e63", "a float image batch (B, H, W, C), C = 1, 3 or 4, values in [0, 1]"),
    PortType("Tensor", "#9c27b0", "a torch.Tensor"),
    PortType("Scalar", "#f44336", "a number"),
    PortType("Transform", "#ff5722", "pytorch3d.transforms.Transform3d"),
    PortType("Loss", "#d32f2f", "a loss: a scalar tensor with its named, weighted terms"),
    PortType("LossHistory", "#c2185b", "per-term loss values over training iterations"),
    PortType("Trained", "#5d4037", "a finished Optimize stage; wire it to a later stage's `after`"),
    PortType("BodyModel", "#cddc39", "an SMPL-layout body model"),
    PortType("BodyParams", "#afb42b", "SMPL parameters: betas, body pose, global orientation, translation"),
    PortType("Keypoints", "#ffeb3b", "2D keypoints (B, J, 2) with confidences (B, J)"),
    PortType("Any", "#ffffff", "accepts any value"),
]
PORT_TYPES: dict[str, PortType] = {t.name: t for t in _TYPES}


def compatible(out_type: str, in_type: str) -> bool:
    """Whether an output of ``out_type`` may feed an input of ``in_type``."""
    return out_type == in_type or in_type == "Any"


def catalogue() -> list[dict]:
    return [{"name": t.name, "color": t.color, "doc": t.doc} for t in _TYPES]


SMALL_TENSOR = 16  # tensors with at most this many elements carry their values in summaries


def _tensor_summary(t: torch.Tensor) -> dict:
    out = {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "device": str(t.device)}
    if t.numel() and (t.is_floating_point() or not t.dtype.is_complex):
        with torch.no_grad():
            f = t.detach().float()
            out.update(min=float(f.min()), mean=float(f.mean()), max=float(f.max()))
            if t.numel() <= SMALL_TENSOR:  # a learned camera position, a colour: show the values themselves
                out["values"] = [round(float(x), 6) for x in f.flatten().cpu().tolist()]
    return out


def summarize(value: Any) -> dict:
    """Describe a value for port inspection and node-finished events. Never raises."""
    try:
        return _summarize(value)
    except Exception as exc:  # a summary must never break a run
        return {"kind": type(value).__name__, "error": str(exc)}


def _summarize(value: Any) -> dict:
    if isinstance(value, torch.Tensor):
        return {"kind": "Tensor", **_tensor_summary(value)}
    if isinstance(value, (int, float, bool)):
        return {"kind": type(value).__name__, "value": value}
    if hasattr(value, "summary") and callable(value.summary):
        return value.summary()
    name = type(value).__name__
    if name == "Meshes":
        return {"kind": "Meshes", "batch": len(value), "verts": value.num_verts_per_mesh().tolist(),
                "faces": value.num_faces_per_mesh().tolist(), "device": str(value.device),
                "textures": type(value.textures).__name__ if value.textures is not None else None}
    if name == "Pointclouds":
        feats = value.features_packed()
        return {"kind": "Pointclouds", "batch": len(value), "points": value.num_points_per_cloud().tolist(),
                "features": None if feats is None else list(feats.shape[1:]), "device": str(value.device)}
    if name == "Volumes":
        dens = value.densities()
        feats = value.features()
        return {"kind": "Volumes", "densities": _tensor_summary(dens),
                "features": None if feats is None else _tensor_summary(feats)}
    if name == "RayBundle" or name == "ImplicitronRayBundle":
        return {"kind": name, "origins": _tensor_summary(value.origins),
                "directions": _tensor_summary(value.directions), "lengths": _tensor_summary(value.lengths),
                "xys": _tensor_summary(value.xys)}
    if hasattr(value, "get_camera_center") and hasattr(value, "R"):
        return {"kind": name, "batch": len(value), "R": list(value.R.shape), "T": list(value.T.shape),
                "device": str(value.device)}
    if isinstance(value, (list, tuple)):
        return {"kind": "list", "length": len(value), "items": [summarize(v) for v in value[:4]]}
    if isinstance(value, dict):
        return {"kind": "dict", "keys": list(value)[:16]}
    return {"kind": name}
