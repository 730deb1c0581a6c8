"""Bundle adjustment: the graph (graphs/bundle_adjustment.json) against a hand-written run of PyTorch3D's
tutorial "Absolute camera orientation given set of relative camera pairs", same data, same seed, same settings
(SGD lr 0.1 momentum 0.9, 2000 iterations). Prints the final relative camera distance (the loss) and the
distance of the learned absolute cameras to the ground truth, for both, and their times.

    python benchmarks/bundle_adjustment.py [--iterations 2000] [--device cpu]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pytorch3d.renderer import PerspectiveCameras
from pytorch3d.transforms import so3_exp_map, so3_relative_angle

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import nodegraph  # noqa: E402

DATA = ROOT / "graphs" / "assets" / "camera_graph.npz"


def calc_camera_distance(cam_1, cam_2) -> torch.Tensor:
    """The tutorial's camera distance: 1 - cos of the relative rotation angle, plus squared translation gap."""
    R_distance = (1.0 - so3_relative_angle(cam_1.R, cam_2.R, cos_angle=True)).mean()
    T_distance = ((cam_1.T - cam_2.T) ** 2).sum(1).mean()
    return R_distance + T_distance


def get_relative_camera(cams, edges):
    trans_i = cams[edges[:, 0]].get_world_to_view_transform()
    trans_j = cams[edges[:, 1]].get_world_to_view_transform()
    matrix_rel = trans_i.inverse().compose(trans_j).get_matrix()
    return PerspectiveCameras(R=matrix_rel[:, :3, :3], T=matrix_rel[:, 3, :3], device=cams.device)


def handwritten(iterations: int, seed: int = 0, device: str = "cpu") -> tuple[float, float]:
    """The tutorial's loop as written there; the random start drawn from a CPU generator seeded with ``seed``
    (log-rotations first, then translations), as LearnableAbsoluteCameras draws it."""
    data = np.load(DATA)
    t = {k: torch.as_tensor(data[k], device=device) for k in data.files}
    N = t["R_absolute_gt"].shape[0]
    cameras_relative = PerspectiveCameras(R=t["R_relative"], T=t["T_relative"], device=device)
    cameras_absolute_gt = PerspectiveCameras(R=t["R_absolute_gt"], T=t["T_absolute_gt"], device=device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    log_R_absolute_init = torch.randn(N, 3, generator=gen)
    T_absolute_init = torch.randn(N, 3, generator=gen)
    log_R_absolute_init[0, :] = 0.0
    T_absolute_init[0, :] = 0.0
    log_R_absolute = log_R_absolute_init.clone().to(device).requires_grad_(True)
    T_absolute = T_absolute_init.clone().to(device).requires_grad_(True)
    camera_mask = torch.ones(N, 1, device=device)
    camera_mask[0] = 0.0
    optimizer = torch.optim.SGD([log_R_absolute, T_absolute], lr=0.1, momentum=0.9)
    for _ in range(iterations):
        optimizer.zero_grad()
        R_absolute = so3_exp_map(log_R_absolute * camera_mask)
        cameras_absolute = PerspectiveCameras(R=R_absolute, T=T_absolute * camera_mask, device=device)
        cameras_relative_composed = get_relative_camera(cameras_absolute, t["relative_edges"])
        camera_distance = calc_camera_distance(cameras_relative_composed, cameras_relative)
        camera_distance.backward()
        optimizer.step()
    with torch.no_grad():
        R_absolute = so3_exp_map(log_R_absolute * camera_mask)
        cameras_absolute = PerspectiveCameras(R=R_absolute, T=T_absolute * camera_mask, device=device)
        final = calc_camera_distance(get_relative_camera(cameras_absolute, t["relative_edges"]), cameras_relative)
        to_gt = calc_camera_distance(cameras_absolute, cameras_absolute_gt)
    return float(final), float(to_gt)


def graph(iterations: int, device: str = "cpu") -> tuple[float, float]:
    """The example graph: its loss after the last step (recomputed after training) and the distance to the truth."""
    g = nodegraph.load(ROOT / "graphs" / "bundle_adjustment.json")
    g.set_params({"optimize.iterations": iterations})
    out = g.run(device=device)
    return float(out["final_distance"]["loss"].total.detach()), float(out["gt_distance"]["loss"].total.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    hand = handwritten(args.iterations, device=args.device)
    t1 = time.perf_counter()
    ours = graph(args.iterations, device=args.device)
    t2 = time.perf_counter()
    print(f"{'':12} {'final relative distance':>24} {'distance to ground truth':>25} {'seconds':>8}")
    print(f"{'hand-written':12} {hand[0]:24.6e} {hand[1]:25.6e} {t1 - t0:8.2f}")
    print(f"{'graph':12} {ours[0]:24.6e} {ours[1]:25.6e} {t2 - t1:8.2f}")
    print(f"time ratio graph / hand-written: {(t2 - t1) / (t1 - t0):.3f}")


if __name__ == "__main__":
    main()
