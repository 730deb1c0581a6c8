"""Turning values into preview payloads: PNG bytes for images, packed float32 arrays for 3D views.

Encoding happens off the compute thread (:class:`PreviewSink`), and each (node, port) is throttled at the
source, so previews never pile up in memory or slow a training loop noticeably.
"""
from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from nodegraph.ratelimit import RateLimit


def images_to_uint8(images: torch.Tensor, max_side: int = 0) -> np.ndarray:
    """(B, H, W, C) or (H, W, C) floats in [0, 1] -> a (H', W', C) uint8 grid, RGB or RGBA or grey."""
    x = images.detach()
    if x.dim() == 3:
        x = x[None]
    if x.shape[-1] not in (1, 3, 4) and x.dim() == 4 and x.shape[1] in (1, 3, 4):
        x = x.permute(0, 2, 3, 1)  # accept (B, C, H, W) too
    x = torch.nan_to_num(x.float(), 0.0).clamp(0, 1)
    b = x.shape[0]
    if b > 1:
        cols = int(np.ceil(np.sqrt(b)))
        rows = int(np.ceil(b / cols))
        pad = rows * cols - b
        if pad:
            x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
        h, w, c = x.shape[1:]
        x = x.reshape(rows, cols, h, w, c).permute(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    else:
        x = x[0]
    if max_side and max(x.shape[:2]) > max_side:
        scale = max_side / max(x.shape[:2])
        size = (max(1, int(x.shape[0] * scale)), max(1, int(x.shape[1] * scale)))
        x = torch.nn.functional.interpolate(x.permute(2, 0, 1)[None], size=size, mode="area")[0].permute(1, 2, 0)
    return (x * 255 + 0.5).to(torch.uint8).cpu().numpy()


def png_bytes(array: np.ndarray) -> bytes:
    if array.shape[-1] == 1:
        array = array[..., 0]
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def mesh_payload(meshes: Any, max_faces: int = 20000) -> tuple[dict, bytes]:
    """First mesh of a batch as float32 vertices, uint32 faces and float32 vertex colours."""
    verts = meshes.verts_list()[0].detach().float().cpu()
    faces = meshes.faces_list()[0].detach().cpu()
    if faces.shape[0] > max_faces:
        faces = faces[:: int(np.ceil(faces.shape[0] / max_faces))]
    colors = _vertex_colors(meshes, verts.shape[0])
    parts = [verts.numpy().astype("<f4"), faces.numpy().astype("<u4"), colors.numpy().astype("<f4")]
    meta = {"kind": "mesh", "verts": int(verts.shape[0]), "faces": int(faces.shape[0]),
            "layout": "verts f32[V,3], faces u32[F,3], colors f32[V,3]"}
    return meta, b"".join(p.tobytes() for p in parts)


def _vertex_colors(meshes: Any, n: int) -> torch.Tensor:
    tex = getattr(meshes, "textures", None)
    try:
        if tex is not None and type(tex).__name__ == "TexturesVertex":
            return tex.verts_features_list()[0][:, :3].detach().float().cpu().clamp(0, 1)
    except Exception:
        pass
    return torch.full((n, 3), 0.7, device="cpu")  # payloads are built on the host


def points_payload(clouds: Any, max_points: int = 50000) -> tuple[dict, bytes]:
    pts = clouds.points_list()[0].detach().float().cpu()
    feats = clouds.features_list()[0] if clouds.features_packed() is not None else None
    cols = feats[:, :3].detach().float().cpu().clamp(0, 1) if feats is not None else torch.full_like(pts, 0.7)
    if pts.shape[0] > max_points:
        step = int(np.ceil(pts.shape[0] / max_points))
        pts, cols = pts[::step], cols[::step]
    meta = {"kind": "points", "points": int(pts.shape[0]), "layout": "points f32[N,3], colors f32[N,3]"}
    return meta, pts.numpy().astype("<f4").tobytes() + cols.numpy().astype("<f4").tobytes()


class PreviewSink:
    """Throttles previews per (node, port) and encodes them on a worker thread before emitting."""

    def __init__(self, emit: Callable[..., Any], max_hz: float = 10.0, max_side: int = 256) -> None:
        self.emit = emit
        self.max_hz = max_hz
        self.max_side = max_side
        self._rates: dict[tuple[str, str], RateLimit] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        self._lock = threading.Lock()

    def due(self, node: str, port: str, force: bool = False) -> bool:
        with self._lock:
            # slack: a frame a trainer's tap made is already paced by the loop; pass it when nearly due
            rate = self._rates.setdefault((node, port), RateLimit(self.max_hz, slack=0.1))
            return force or rate.ready(time.monotonic())

    def image(self, node: str, port: str, images: torch.Tensor, force: bool = False, **meta: Any) -> None:
        if not self.due(node, port, force):
            return
        array = images_to_uint8(images, self.max_side)  # device -> host copy happens here, on the caller

        def encode() -> None:
            self.emit("preview", node=node, port=port, kind="image", mime="image/png",
                      width=int(array.shape[1]), height=int(array.shape[0]), data=png_bytes(array), **meta)

        self._pool.submit(encode)

    def payload(self, node: str, port: str, meta: dict, data: bytes, force: bool = False) -> None:
        if self.due(node, port, force):
            self.emit("preview", node=node, port=port, data=data, **meta)

    def plot(self, node: str, port: str, series: dict[str, list[float]], force: bool = False, **meta) -> None:
        if self.due(node, port, force):
            self.emit("preview", node=node, port=port, kind="plot", series=series, **meta)

    def flush(self) -> None:
        """Wait until every queued preview has been emitted (end of a run)."""
        self._pool.submit(lambda: None).result()
