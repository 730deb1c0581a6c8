"""SMPLForward node vs the reference ``smplx.lbs.lbs`` on a batch of random poses and shapes.

Both run in the same process on the same tensors, alternating call by call, so machine load affects them
alike. The node's time includes everything a graph pays: input checks, LBS, translation, building the
``Meshes`` with vertex colours (the executor's call wrapper too). Target: node / reference <= 1.1.

    python benchmarks/smpl_forward.py                      # stand-in body, batch 64, CPU
    python benchmarks/smpl_forward.py --device cuda --full # an SMPL-sized model (6890 verts), on the GPU
    python benchmarks/smpl_forward.py --model path/to/SMPL_NEUTRAL.npz --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smplx.lbs import lbs  # noqa: E402

from nodegraph.graph import Graph  # noqa: E402
from nodegraph.nodes._smpl import BodyParams  # noqa: E402

STANDIN = ROOT / "graphs" / "assets" / "standin_body" / "standin_body.npz"


def smpl_sized_model(path: Path, seed: int = 0) -> None:
    """Random arrays with SMPL's sizes (6890 vertices, 13776 faces, 24 joints, 10 betas), for timing only."""
    rng = np.random.default_rng(seed)
    V, F, J = 6890, 13776, 24
    weights = rng.random((V, J)) ** 8
    reg = rng.random((J, V)) * (rng.random((J, V)) < 0.01)
    np.savez(path, v_template=rng.normal(size=(V, 3)).astype(np.float32),
             shapedirs=(0.01 * rng.normal(size=(V, 3, 10))).astype(np.float32),
             posedirs=(0.001 * rng.normal(size=(V, 3, 207))).astype(np.float32),
             J_regressor=(reg / reg.sum(1, keepdims=True)).astype(np.float32),
             weights=(weights / weights.sum(1, keepdims=True)).astype(np.float32),
             kintree_table=np.stack([[-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                                      20, 21], np.arange(J)]),
             f=rng.integers(0, V, size=(F, 3)).astype(np.int32))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each (after warm-up)")
    parser.add_argument("--model", type=Path, default=None, help="an SMPL-layout .npz (default: the stand-in)")
    parser.add_argument("--full", action="store_true", help="an SMPL-sized random model (6890 vertices)")
    parser.add_argument("--grad", action="store_true", help="time forward + backward instead of forward only")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model or STANDIN
        if args.full:
            model_path = Path(tmp) / "smpl_sized.npz"
            smpl_sized_model(model_path)
        g = Graph(name="bench", base_dir=model_path.resolve().parent)
        g.add_node("LoadBodyModel", "model", file=model_path.name)
        g.add_node("SMPLParamsFixed", "params")
        g.add_node("SMPLForward", "body")
        g.connect("model", "model", "body", "model")
        g.connect("params", "params", "body", "params")
        model = g.run(device=str(device), targets=["body"], out_dir=tmp)["model"]["model"]
        ex = g.executor

    torch.manual_seed(0)
    B = args.batch
    params = BodyParams(betas=0.5 * torch.randn(B, model.num_betas, device=device),
                        body_pose=0.3 * torch.randn(B, 69, device=device),
                        global_orient=0.3 * torch.randn(B, 3, device=device),
                        transl=0.1 * torch.randn(B, 3, device=device))
    if args.grad:
        for t in (params.betas, params.body_pose, params.global_orient, params.transl):
            t.requires_grad_(True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run_node():
        out = ex.call("body", {"model": model, "params": params})
        if args.grad:
            out["mesh"].verts_padded().sum().backward()
        return out["mesh"].verts_padded()

    def run_reference():
        pose = torch.cat([params.global_orient, params.body_pose], dim=1)
        verts, joints = lbs(params.betas, pose, model.v_template, model.shapedirs, model.posedirs,
                            model.J_regressor, model.parents, model.weights)
        if args.grad:
            verts.sum().backward()
        return verts

    with torch.no_grad() if not args.grad else torch.enable_grad():
        diff = float((run_node() - params.transl[:, None].detach() - run_reference()).abs().max())
        times = {"node": [], "reference": []}
        for _ in range(3):
            run_node(), run_reference()
        for _ in range(args.repeats):
            for name, fn in (("node", run_node), ("reference", run_reference)):
                sync()
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
    node_ms = 1000 * statistics.median(times["node"])
    ref_ms = 1000 * statistics.median(times["reference"])
    result = {"device": str(device), "batch": B, "verts": int(model.v_template.shape[0]), "node_ms": node_ms,
              "reference_ms": ref_ms, "ratio": node_ms / ref_ms, "max_abs_diff": diff, "grad": args.grad}
    print(f"SMPL forward, batch {B}, {result['verts']} vertices, {device}{' (+backward)' if args.grad else ''}: "
          f"node {node_ms:.2f} ms, smplx.lbs.lbs {ref_ms:.2f} ms, ratio {result['ratio']:.3f} (target <= 1.1); "
          f"max |difference| {diff:.2e}")
    return result


if __name__ == "__main__":
    main()
