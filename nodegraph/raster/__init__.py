"""A fast CPU rasterizer that returns exactly PyTorch3D's fragments, with gradients.

``rasterize_meshes`` and ``rasterize_points`` take the arguments of PyTorch3D's functions of the same names and
return the same tuples; ``BackendMeshRasterizer`` / ``BackendPointsRasterizer`` are PyTorch3D's rasterizer
modules with a ``backend`` choice ("auto": these kernels on a CPU, PyTorch3D's on CUDA);
``BackendSoftPhongShader`` / ``BackendHardPhongShader`` are PyTorch3D's Phong shaders that shade a CPU frame
nothing differentiates through with one fused kernel (``shading.py``). The kernels are numba,
compiled on first use and cached on disk. This package builds on PyTorch3D and numba only.
"""
from __future__ import annotations

from .backend import BACKENDS, choose, numba_problem, ran, record, reset
from .meshes import rasterize_meshes
from .points import rasterize_points
from .rasterizers import BackendMeshRasterizer, BackendPointsRasterizer
from .shading import BackendHardPhongShader, BackendSoftPhongShader, shade_phong

__all__ = ["BACKENDS", "BackendHardPhongShader", "BackendMeshRasterizer", "BackendPointsRasterizer",
           "BackendSoftPhongShader", "choose", "numba_problem", "ran", "rasterize_meshes", "rasterize_points",
           "record", "reset", "shade_phong"]
