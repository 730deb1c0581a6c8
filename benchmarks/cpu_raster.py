"""The compiled CPU rasterizer (nodegraph.raster, "numba") against PyTorch3D's own CPU rasterizer, in one run.

Rows (the issue's targets):

- cow:     the textured cow at 512x512, hard (blur 0, 1 face per pixel), rasterize + SoftPhong shade (the
           "Render textured meshes" tutorial's frame); image mean absolute difference and pix_to_face agreement.
           The numba side rasterizes and shades with nodegraph's kernels (``BackendSoftPhongShader``, the
           editor's default on a CPU), the pytorch3d side with PyTorch3D's own; then each half alone.
- teapot:  soft silhouette at 256x256, 100 faces per pixel, the camera-pose tutorial's blur and loss, forward
           + backward; cosine and relative error of the vertex gradients.
- points:  the coloured point cloud (50,000 points sampled from the cow) at 512x512, radius 0.003, 10 points
           per pixel, AlphaCompositor; image difference.
- scaling: ours alone, the cow at 128..1024 px and ico-spheres of 1,280..327,680 faces at 512 px, with the
           kernel's working memory (it grows with pixels x K + faces, never pixels x faces).
- compile: first call in a fresh process with an empty numba cache (cold) and with the cache filled (cached).

The two backends alternate (and which goes first alternates too), each row is repeated, and medians are
reported with the ratio PyTorch3D / ours. The output says which backend produced each column.

    python benchmarks/cpu_raster.py                 # all rows (PyTorch3D's side takes a few minutes)
    python benchmarks/cpu_raster.py --rows cow,compile --repeats 2
    python benchmarks/cpu_raster.py --rows teapot --torch-threads 1   # PyTorch3D's shading on one thread
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from pytorch3d.io import load_obj, load_objs_as_meshes  # noqa: E402
from pytorch3d.ops import sample_points_from_meshes  # noqa: E402
from pytorch3d.renderer import (AlphaCompositor, BlendParams, FoVOrthographicCameras,  # noqa: E402
                                FoVPerspectiveCameras, MeshRenderer, PointLights, PointsRasterizationSettings,
                                PointsRenderer, RasterizationSettings, SoftSilhouetteShader,
                                look_at_rotation, look_at_view_transform)
from pytorch3d.structures import Meshes, Pointclouds  # noqa: E402
from pytorch3d.utils import ico_sphere  # noqa: E402

from nodegraph.raster import (BackendMeshRasterizer, BackendPointsRasterizer,  # noqa: E402
                              BackendSoftPhongShader)

COW = str(ROOT / "graphs" / "assets" / "cow_mesh" / "cow.obj")
TEAPOT = str(ROOT / "graphs" / "assets" / "teapot.obj")
SIDES = ("pytorch3d", "numba")


def alternate(run, repeats: int) -> dict:
    """{side: [seconds]} and {side: last result}, the sides alternating and swapping who goes first."""
    times: dict = {s: [] for s in SIDES}
    results: dict = {}
    for i in range(repeats):
        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
            t = time.perf_counter()
            results[side] = run(side)
            times[side].append(time.perf_counter() - t)
    return {"times": times, "results": results}


def summary(name: str, measured: dict, **extra) -> dict:
    med = {s: statistics.median(measured["times"][s]) for s in SIDES}
    row = {"row": name, "pytorch3d_s": med["pytorch3d"], "numba_s": med["numba"],
           "ratio": med["pytorch3d"] / med["numba"], "repeats": len(measured["times"]["numba"]),
           "all_s": measured["times"], **extra}
    print(f"{name:<34} pytorch3d {med['pytorch3d']:9.3f} s   numba {med['numba']:8.4f} s   "
          f"x{row['ratio']:7.1f}   " + "  ".join(f"{k}={v}" for k, v in extra.items()), flush=True)
    return row


def cow_row(repeats: int) -> dict:
    cow = load_objs_as_meshes([COW])
    R, T = look_at_view_transform(2.7, 0, 180)
    cams = FoVPerspectiveCameras(R=R, T=T)
    lights = PointLights(location=[[0.0, 0.0, -3.0]])
    settings = RasterizationSettings(image_size=512, blur_radius=0.0, faces_per_pixel=1)

    def run(side):
        rast = BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend=side)
        with torch.no_grad():
            frags = rast(cow)
            images = BackendSoftPhongShader(cameras=cams, lights=lights, backend=side)(frags, cow)
        return frags.pix_to_face, images

    m = alternate(run, repeats)
    (p_ref, i_ref), (p_ours, i_ours) = m["results"]["pytorch3d"], m["results"]["numba"]
    mad = (i_ref[..., :3] - i_ours[..., :3]).abs().mean().item() * 255
    worst = (i_ref - i_ours).abs().max().item() * 255
    agree = (p_ref == p_ours).float().mean().item() * 100
    rows = [summary("cow 512 hard, raster + SoftPhong", m, image_mad_255=f"{mad:.6f}",
                    image_max_255=f"{worst:.6f}", pix_to_face_same_pct=f"{agree:.4f}")]

    with torch.no_grad():
        frags = BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend="numba")(cow)

    def shade_only(side):
        with torch.no_grad():
            return BackendSoftPhongShader(cameras=cams, lights=lights, backend=side)(frags, cow)

    m = alternate(shade_only, repeats + 2)
    worst = (m["results"]["pytorch3d"] - m["results"]["numba"]).abs().max().item()
    rows.append(summary("cow 512, SoftPhong shading only", m, image_max_abs_diff=f"{worst:.2g}"))

    def raster_only(side):
        with torch.no_grad():
            return BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend=side)(cow).zbuf

    m = alternate(raster_only, repeats)
    same = torch.equal(m["results"]["pytorch3d"], m["results"]["numba"])
    rows.append(summary("cow 512 hard, rasterizer only", m, zbuf_identical=same))
    return rows


def teapot_row(repeats: int) -> dict:
    verts, faces, _ = load_obj(TEAPOT, load_textures=False)
    sigma = 1e-4
    blend = BlendParams(sigma=sigma, gamma=1e-4)
    settings = RasterizationSettings(image_size=256, blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma,
                                     faces_per_pixel=100)
    R, T = look_at_view_transform(3.0, 50.0, 0.0)
    target_mesh = Meshes([verts], [faces.verts_idx])
    with torch.no_grad():
        target = MeshRenderer(BackendMeshRasterizer(FoVPerspectiveCameras(R=R, T=T), settings, "numba"),
                              SoftSilhouetteShader(blend_params=blend))(target_mesh)[..., 3]
    position = torch.tensor([[3.0, 6.9, 2.5]])
    Rc = look_at_rotation(position)
    Tc = -torch.bmm(Rc.transpose(1, 2), position[:, :, None])[:, :, 0]
    cams = FoVPerspectiveCameras(R=Rc, T=Tc)

    def run(side):
        v = verts.clone().requires_grad_(True)
        rast = BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend=side)
        image = MeshRenderer(rast, SoftSilhouetteShader(blend_params=blend))(Meshes([v], [faces.verts_idx]))
        loss = ((image[..., 3] - target) ** 2).sum()
        loss.backward()
        return loss.detach(), v.grad.double()

    m = alternate(run, repeats)
    (l_ref, g_ref), (l_ours, g_ours) = m["results"]["pytorch3d"], m["results"]["numba"]
    cos = (torch.dot(g_ref.flatten(), g_ours.flatten()) / (g_ref.norm() * g_ours.norm())).item()
    rel = ((g_ref - g_ours).norm() / g_ref.norm()).item()
    rows = [summary("teapot 256 soft K=100, fwd + bwd", m, grad_cosine=f"{cos:.8f}", grad_rel_err=f"{rel:.2e}",
                    loss_diff=f"{abs(l_ref.item() - l_ours.item()):.3g}")]

    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(1, 256, 256, 100, *extra, generator=gen) for extra in ((), (3,), ())]

    def raster_only(side):
        v = verts.clone().requires_grad_(True)
        frags = BackendMeshRasterizer(cameras=cams, raster_settings=settings, backend=side)(
            Meshes([v], [faces.verts_idx]))
        # upstream gradients handed straight to the rasterizer's backward: no loss arithmetic timed
        torch.autograd.backward([frags.zbuf, frags.bary_coords, frags.dists], weights)
        return v.grad.double()

    m = alternate(raster_only, repeats)
    g_ref, g_ours = m["results"]["pytorch3d"], m["results"]["numba"]
    cos = (torch.dot(g_ref.flatten(), g_ours.flatten()) / (g_ref.norm() * g_ours.norm())).item()
    rel = ((g_ref - g_ours).norm() / g_ref.norm()).item()
    rows.append(summary("teapot 256 K=100, rasterizer f+b only", m, grad_cosine=f"{cos:.8f}",
                        grad_rel_err=f"{rel:.2e}"))
    return rows


def points_row(repeats: int) -> dict:
    cow = load_objs_as_meshes([COW])
    verts = cow.verts_packed()
    centre = verts.mean(0)
    cow = cow.offset_verts(-centre).scale_verts(1.0 / (verts - centre).norm(dim=1).max().item())
    torch.manual_seed(0)
    pts, rgb = sample_points_from_meshes(cow, 50_000, return_textures=True)
    cloud = Pointclouds(points=pts, features=rgb)
    R, T = look_at_view_transform(20, 10, 0)
    cams = FoVOrthographicCameras(R=R, T=T, znear=0.01)
    settings = PointsRasterizationSettings(image_size=512, radius=0.003, points_per_pixel=10)

    def run(side):
        rast = BackendPointsRasterizer(cameras=cams, raster_settings=settings, backend=side)
        with torch.no_grad():
            return PointsRenderer(rast, AlphaCompositor())(cloud)

    m = alternate(run, repeats)
    diff = (m["results"]["pytorch3d"] - m["results"]["numba"]).abs().max().item()
    return summary("points 512 (50k, r 0.003, K 10)", m, image_max_abs_diff=f"{diff:.3g}")


def working_bytes(n: int, h: int, w: int, k: int, faces: int) -> int:
    """The forward's memory: its four outputs, a count per pixel and a box and area per face."""
    return n * h * w * k * (8 + 4 + 12 + 4) + n * h * w * 4 + faces * 24


def scaling_rows() -> list[dict]:
    rows = []
    cow = load_objs_as_meshes([COW])
    R, T = look_at_view_transform(2.7, 0, 180)
    cams = FoVPerspectiveCameras(R=R, T=T)
    cases = [("cow", cow, s) for s in (128, 256, 512, 1024)]
    cases += [(f"ico_sphere({lvl})", ico_sphere(lvl), 512) for lvl in (3, 4, 5, 6, 7)]
    print(f"{'scaling (numba only)':<24}{'faces':>9}{'px':>6}{'covered':>9}{'ms':>9}{'work MiB':>10}")
    for name, mesh, size in cases:
        rast = BackendMeshRasterizer(cameras=cams, raster_settings=RasterizationSettings(image_size=size),
                                     backend="numba")
        rast(mesh)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            frags = rast(mesh)
            times.append(time.perf_counter() - t)
        covered = int((frags.pix_to_face[..., 0] >= 0).sum())
        faces = mesh.num_faces_per_mesh().item()
        mib = working_bytes(1, size, size, 1, faces) / 2 ** 20
        ms = statistics.median(times) * 1000
        print(f"{name:<24}{faces:>9}{size:>6}{covered:>9}{ms:>9.1f}{mib:>10.1f}", flush=True)
        rows.append({"row": "scaling", "mesh": name, "faces": faces, "image_size": size, "faces_per_pixel": 1,
                     "covered_pixels": covered, "numba_ms": ms, "working_MiB": mib})
    return rows


_FIRST_CALL = """
import time, torch
t = time.perf_counter()
from pytorch3d.utils import ico_sphere
from pytorch3d.structures import Pointclouds
from nodegraph.raster import rasterize_meshes, rasterize_points
m = ico_sphere(1).offset_verts(torch.tensor([0.0, 0.0, 2.0]))
v = m.verts_packed().clone().requires_grad_(True)
from pytorch3d.structures import Meshes
out = rasterize_meshes(Meshes([v], [m.faces_packed()]), image_size=8, blur_radius=0.01, faces_per_pixel=2,
                       perspective_correct=True)
out[1].sum().backward()
p = v.detach().clone().requires_grad_(True)
idx, z, d = rasterize_points(Pointclouds([p]), image_size=8, radius=0.1)
z.sum().backward()
print(time.perf_counter() - t)
"""


def compile_rows() -> list[dict]:
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold (empty numba cache)", "cached"):
            env["NUMBA_CACHE_DIR"] = cache
            out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True,
                                 check=True)
            seconds = float(out.stdout.strip().splitlines()[-1])
            print(f"first call, {label:<26} {seconds:7.2f} s (mesh forward+backward, points forward+backward)")
            rows.append({"row": "compile", "case": label, "seconds": seconds})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="cow,teapot,points,scaling,compile")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    import numba

    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, numba {numba.__version__} with "
          f"{numba.get_num_threads()} threads; columns: pytorch3d = PyTorch3D's CPU rasterizer, numba = "
          f"nodegraph.raster; ratio = pytorch3d / numba")
    wanted = args.rows.split(",")
    rows: list[dict] = []
    if "cow" in wanted:
        rows += cow_row(args.repeats)
    if "teapot" in wanted:
        rows += teapot_row(max(1, args.repeats - 1))
    if "points" in wanted:
        rows.append(points_row(max(1, args.repeats - 1)))
    if "scaling" in wanted:
        rows += scaling_rows()
    if "compile" in wanted:
        rows += compile_rows()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")
    rows.append({"row": "peak_rss_MiB", "value": peak})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
