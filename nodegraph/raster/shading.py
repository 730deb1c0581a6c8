"""PyTorch3D's Phong shaders with a compiled CPU path for frames nothing differentiates through.

On a CPU, PyTorch3D's ``SoftPhongShader`` spends most of a frame in full-frame tensor passes (37 of the cow's
45 ms at 512 px once our rasterizer made the fragments cheap). :class:`BackendSoftPhongShader` and
:class:`BackendHardPhongShader` are PyTorch3D's shaders whose ``forward`` hands the frame to one fused kernel
(``kernels_shading.shade_phong``) when

- the fragments and meshes are CPU float32 tensors,
- no tensor the shading reads requires a gradient while grad mode is on (a fit's render stays PyTorch3D's,
  with its backward; targets, previews and plain renders take the kernel),
- the textures are ``TexturesVertex`` or ``TexturesUV`` (one map per mesh, bilinear or nearest sampling,
  border or zeros padding) with three channels, the lights are one ``PointLights``, ``DirectionalLights``
  or ``AmbientLights`` (per image or shared) and the materials one set shared by the batch,

and otherwise calls PyTorch3D's own ``forward``. :func:`unsupported` names the first condition that fails;
``last_backend`` says which ran, counted under "shading" in :func:`nodegraph.raster.ran`.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch3d.renderer import AmbientLights, DirectionalLights, PointLights
from pytorch3d.renderer import HardPhongShader as _HardPhongShader
from pytorch3d.renderer import SoftPhongShader as _SoftPhongShader
from pytorch3d.renderer import TexturesUV, TexturesVertex
from pytorch3d.renderer.blending import _get_background_color

from .backend import BACKENDS, choose, record
from .meshes import _numpy
from .threads import tasks, threads_for, using

__all__ = ["BACKENDS", "BackendHardPhongShader", "BackendSoftPhongShader", "shade_phong", "unsupported"]

_LIGHT_KINDS = {PointLights: 0, DirectionalLights: 1, AmbientLights: 2}
_PADDING = {"border": 0, "zeros": 1}


def _light_tensors(lights) -> list[torch.Tensor]:
    names = ("ambient_color",) if type(lights) is AmbientLights else (
        "ambient_color", "diffuse_color", "specular_color",
        "location" if type(lights) is PointLights else "direction")
    return [getattr(lights, name) for name in names]


def _texture_tensors(textures) -> list[torch.Tensor]:
    if isinstance(textures, TexturesVertex):
        return [textures.verts_features_packed()]
    return [textures.maps_padded(), *textures.verts_uvs_list()]


def unsupported(fragments, meshes, lights, cameras, materials) -> str | None:
    """Why the kernel cannot shade this frame exactly as PyTorch3D would (None: it can)."""
    textures = meshes.textures
    if type(textures) not in (TexturesVertex, TexturesUV) or textures.isempty():
        return f"textures are {type(textures).__name__}, not TexturesVertex or TexturesUV"
    if isinstance(textures, TexturesUV):
        if textures.maps_ids_padded() is not None:
            return "TexturesUV with several maps per mesh"
        if textures.sampling_mode not in ("bilinear", "nearest") or textures.padding_mode not in _PADDING:
            return f"TexturesUV sampling {textures.sampling_mode!r} with padding {textures.padding_mode!r}"
    if type(lights) not in _LIGHT_KINDS:
        return f"lights are {type(lights).__name__}"
    n = fragments.pix_to_face.shape[0]
    light_tensors = _light_tensors(lights)
    tensors = [meshes.verts_packed(), *_texture_tensors(textures), *light_tensors,
               materials.ambient_color, materials.diffuse_color, materials.specular_color, materials.shininess,
               cameras.R, cameras.T, fragments.bary_coords, fragments.zbuf, fragments.dists]
    if any(t.device.type != "cpu" for t in tensors):
        return "tensors are not on the CPU"
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        return "tensors are not float32"
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return "gradients flow through the shading"
    channels = textures.verts_features_packed().shape[-1] if isinstance(textures, TexturesVertex) \
        else textures.maps_padded().shape[-1]
    if channels != 3:
        return f"textures have {channels} channels"
    if any(t.shape[0] not in (1, n) for t in [*light_tensors, cameras.R]):
        return "lights or cameras are batched differently from the meshes"
    if any(t.shape[0] != 1 for t in (materials.ambient_color, materials.diffuse_color, materials.specular_color,
                                     materials.shininess)):
        return "materials hold one value per image (PyTorch3D broadcasts them against the K axis)"
    return None


def _per_image(t, n: int, width: int | None = 3) -> np.ndarray:
    """A per-batch property as a contiguous float32 (n, width) (or (n,)) array, broadcast from batch 1."""
    t = torch.as_tensor(t, dtype=torch.float32).detach()
    shape = (n,) if width is None else (n, width)
    return np.ascontiguousarray(t.reshape(-1, *shape[1:]).expand(shape).numpy())


def shade_phong(fragments, meshes, lights, cameras, materials, blend_params, soft: bool, znear=1.0,
                zfar=100.0) -> torch.Tensor:
    """PyTorch3D's ``phong_shading`` then ``softmax_rgb_blend`` (``soft``) or ``hard_rgb_blend``: (N, H, W, 4)
    RGBA, computed by the fused kernel. Call only when :func:`unsupported` returns None."""
    from .kernels_shading import shade_phong as kernel

    p2f = fragments.pix_to_face
    n, h, w, k = p2f.shape
    faces = meshes.faces_packed()
    textures = meshes.textures
    uv_mode = isinstance(textures, TexturesUV)
    unused = torch.zeros(1, 3, 3)
    if uv_mode:
        fuvs = torch.cat([v[f] for v, f in zip(textures.verts_uvs_list(), textures.faces_uvs_list())])
        maps, fcolours = textures.maps_padded(), unused
    else:
        fuvs, maps, fcolours = unused, torch.zeros(1, 1, 1, 3), textures.verts_features_packed()[faces]
    ambient_only = type(lights) is AmbientLights
    zeros = torch.zeros(1, 3)
    light_pos = zeros if ambient_only else (lights.location if type(lights) is PointLights else lights.direction)
    arrays = [_numpy(t, torch.float32) for t in (
        fragments.bary_coords, fragments.zbuf, fragments.dists, meshes.verts_packed()[faces],
        meshes.verts_normals_packed()[faces], fcolours, fuvs, maps)]
    out = np.empty((n, h, w, 4), np.float32)
    with using(threads_for(n * h * w * k)) as threads:
        kernel(_numpy(p2f, torch.int64), *arrays, uv_mode,
               bool(getattr(textures, "align_corners", True)), _PADDING.get(getattr(textures, "padding_mode", ""), 0),
               getattr(textures, "sampling_mode", "") == "nearest", _LIGHT_KINDS[type(lights)],
               _per_image(light_pos, n), _per_image(lights.ambient_color, n),
               _per_image(zeros if ambient_only else lights.diffuse_color, n),
               _per_image(zeros if ambient_only else lights.specular_color, n),
               _per_image(materials.ambient_color, n), _per_image(materials.diffuse_color, n),
               _per_image(materials.specular_color, n), _per_image(materials.shininess, n, None),
               _per_image(cameras.get_camera_center(), n), bool(soft), np.float32(blend_params.sigma),
               np.float32(blend_params.gamma), _numpy(_get_background_color(blend_params, "cpu"), torch.float32),
               _per_image(znear, n, None), _per_image(zfar, n, None), tasks(n * h, threads), out)
    return torch.from_numpy(out)


class _ShadingChoice:
    """What both Phong shaders add to PyTorch3D's: a ``backend`` param, and which backend shaded (counted)."""

    soft: bool

    def __init__(self, device="cpu", cameras=None, lights=None, materials=None, blend_params=None,
                 backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(device=device, cameras=cameras, lights=lights, materials=materials,
                         blend_params=blend_params)
        self.backend = backend
        self.last_backend: str | None = None
        self.last_reason: str | None = None

    def forward(self, fragments, meshes, **kwargs) -> torch.Tensor:
        cameras = self._get_cameras(**kwargs)
        lights = kwargs.get("lights", self.lights)
        materials = kwargs.get("materials", self.materials)
        chosen = choose(self.backend, fragments.pix_to_face.device)
        self.last_reason = None
        if chosen == "numba":
            self.last_reason = unsupported(fragments, meshes, lights, cameras, materials)
            if self.last_reason:
                chosen = "pytorch3d"
        self.last_backend = chosen
        record("shading", chosen)
        if chosen == "pytorch3d":
            return super().forward(fragments, meshes, **kwargs)
        znear = kwargs.get("znear", getattr(cameras, "znear", 1.0)) if self.soft else 1.0
        zfar = kwargs.get("zfar", getattr(cameras, "zfar", 100.0)) if self.soft else 100.0
        return shade_phong(fragments, meshes, lights, cameras, materials,
                           kwargs.get("blend_params", self.blend_params), self.soft, znear, zfar)


class BackendSoftPhongShader(_ShadingChoice, _SoftPhongShader):
    """``SoftPhongShader`` whose frames nothing differentiates through are shaded by the compiled kernel."""

    soft = True


class BackendHardPhongShader(_ShadingChoice, _HardPhongShader):
    """``HardPhongShader`` whose frames nothing differentiates through are shaded by the compiled kernel."""

    soft = False
