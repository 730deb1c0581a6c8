"""MarchingCubes against pytorch3d.ops.marching_cubes called directly, from a Volumes density and from an
implicit function sampled on a grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch3d.ops.marching_cubes import marching_cubes
from pytorch3d.renderer import RayBundle
from pytorch3d.structures import Volumes

from nodegraph.errors import NodeError

from test_nodes_render import build


def test_function_isosurface_is_the_sphere_and_equals_direct_marching_cubes():
    center, radius, n, extent = torch.tensor([0.2, 0.0, -0.1]), 0.8, 40, 1.5
    g = build({"sphere": ("SphereField", {"center": center.tolist(), "radius": radius, "sharpness": 10.0}),
               "mc": ("MarchingCubes", {"resolution": n, "extent": extent, "chunk_size": 5000,
                                        "center": center.tolist()})},
              ["sphere.function -> mc.function"])
    out = g.run(device="cpu")
    mesh = out["mc"]["mesh"]
    verts = mesh.verts_packed()
    distance = (verts - center).norm(dim=1)
    assert (distance - radius).abs().max() < 0.02  # the 0.5 level of sigmoid(-k sdf) is the sphere itself
    axis = torch.linspace(-extent, extent, n)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    points = (torch.stack([x, y, z], -1) + center).reshape(1, -1, 3)
    field = out["sphere"]["function"]  # the field itself, read at the grid points by hand
    grid = field(ray_bundle=RayBundle(points, torch.ones_like(points), points.new_zeros(1, points.shape[1], 1),
                                      points.new_zeros(1, points.shape[1], 2)))[0].reshape(n, n, n)
    direct_v, direct_f = marching_cubes(grid[None], 0.5, return_local_coords=True)
    assert torch.equal(mesh.faces_packed(), direct_f[0])
    assert (verts - (direct_v[0] * extent + center)).abs().max() < 1e-6


def test_volume_isosurface_equals_direct_marching_cubes_in_world_coordinates(tmp_path):
    n = 24
    axis = torch.linspace(-1, 1, n)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    dens = (1.0 - torch.stack([x + 0.2, y, z], -1).norm(dim=-1)).clamp(0, 1)[None, None]  # a ball off centre
    np.save(tmp_path / "ball.npy", dens.numpy())
    g = build({"dens": ("LoadTensor", {"file": "ball.npy"}),
               "volume": ("Volumes", {"voxel_size": 0.1, "center": [0.3, 0.0, 0.0], "feature_channels": 0}),
               "mc": ("MarchingCubes", {"isolevel": 0.5})},
              ["dens.tensor -> volume.densities", "volume.volumes -> mc.volumes"], base_dir=tmp_path)
    mesh = g.run(device="cpu")["mc"]["mesh"]
    vol = Volumes(densities=dens, voxel_size=0.1, volume_translation=(-0.3, 0.0, 0.0))
    direct_v, direct_f = marching_cubes(dens[:, 0], 0.5, return_local_coords=True)
    world = vol.local_to_world_coords(direct_v[0][None])[0]
    assert torch.equal(mesh.faces_packed(), direct_f[0]) and mesh.faces_packed().shape[0] > 100
    assert (mesh.verts_packed() - world).abs().max() < 1e-6
    # the ball's centre: 0.2 grid units (of 2 across 23 voxels) off the middle, then the volume's centre
    assert mesh.verts_packed().mean(0)[0] == pytest.approx(0.3 - 0.2 * 11.5 * 0.1, abs=0.02)


def test_isolevel_outside_the_densities_and_no_input_name_node_and_field():
    g = build({"sphere": ("SphereField", {}), "mc": ("MarchingCubes", {"isolevel": 2.0, "resolution": 8})},
              ["sphere.function -> mc.function"])
    with pytest.raises(NodeError, match=r"mc\.isolevel.*no surface"):
        g.run(device="cpu")
    with pytest.raises(NodeError, match=r"mc\.volumes.*exactly one"):
        build({"mc": ("MarchingCubes", {})}, []).run(device="cpu")
