"""The bundle-adjustment tutorial as a graph: its nodes against PyTorch3D called directly, and the example at the
tutorial's settings reaching the hand-written run's final camera distance (same data, same seed)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch3d.renderer import PerspectiveCameras
from pytorch3d.transforms import so3_exp_map

import nodegraph
from nodegraph.errors import NodeError

from test_nodes_render import build

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bundle_adjustment import calc_camera_distance, get_relative_camera, handwritten  # noqa: E402

DATA = ROOT / "graphs" / "assets" / "camera_graph.npz"
# benchmarks/bundle_adjustment.py, hand-written tutorial, seed 0, 2000 iterations, one thread
HANDWRITTEN_FINAL, HANDWRITTEN_TO_GT = 9.587541e-03, 8.623634e-02

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    with np.load(DATA) as d:
        return {k: torch.as_tensor(d[k]) for k in d.files}


def test_load_tensor_relative_cameras_and_distance_equal_direct_pytorch3d(data):
    g = build({"R": ("LoadTensor", {"key": "R_absolute_gt"}), "T": ("LoadTensor", {"key": "T_absolute_gt"}),
               "edges": ("LoadTensor", {"key": "relative_edges"}), "Rr": ("LoadTensor", {"key": "R_relative"}),
               "Tr": ("LoadTensor", {"key": "T_relative"}),
               "cams": ("PerspectiveCameras", {}), "rel": ("PerspectiveCameras", {}),
               "composed": ("RelativeCameras", {}), "distance": ("CameraDistanceLoss", {"weight": 2.0})},
              ["R.tensor -> cams.R", "T.tensor -> cams.T", "Rr.tensor -> rel.R", "Tr.tensor -> rel.T",
               "cams.cameras -> composed.cameras", "edges.tensor -> composed.edges",
               "composed.cameras -> distance.cameras", "rel.cameras -> distance.target"])
    out = g.run(device="cpu")
    assert out["edges"]["tensor"].dtype == torch.int64 and torch.equal(out["edges"]["tensor"], data["relative_edges"])
    gt = PerspectiveCameras(R=data["R_absolute_gt"], T=data["T_absolute_gt"])
    direct = get_relative_camera(gt, data["relative_edges"])
    composed = out["composed"]["cameras"]
    assert len(composed) == 190
    assert (composed.R - direct.R).abs().max() == 0 and (composed.T - direct.T).abs().max() == 0
    expected = calc_camera_distance(direct, PerspectiveCameras(R=data["R_relative"], T=data["T_relative"]))
    loss = out["distance"]["loss"]
    assert float(loss.terms["distance"]) == pytest.approx(float(expected), abs=1e-7)
    assert float(loss.total) == pytest.approx(2 * float(expected), abs=1e-7)
    assert float(expected) < 1e-6  # composed from the ground truth, they are the data's relative cameras


def test_learnable_absolute_cameras_keep_camera_zero_fixed():
    g = build({"abs": ("LearnableAbsoluteCameras", {"count": 5, "seed": 3})}, [])
    out = g.run(device="cpu")["abs"]
    gen = torch.Generator().manual_seed(3)
    log_R, T = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    log_R[0], T[0] = 0.0, 0.0
    assert torch.equal(out["log_R"].detach(), log_R) and torch.equal(out["T"].detach(), T)
    assert torch.allclose(out["R"], so3_exp_map(log_R)) and torch.equal(out["R"][0].detach(), torch.eye(3))
    assert torch.equal(out["cameras"].T[0].detach(), torch.zeros(3))


def test_bad_edges_and_missing_key_name_node_and_field(tmp_path):
    np.savez(tmp_path / "g.npz", edges=np.array([[0, 7]]), R=np.eye(3)[None].repeat(2, 0), words=np.array(["a"]))
    g = build({"R": ("LoadTensor", {"file": "g.npz", "key": "R"}), "e": ("LoadTensor", {"file": "g.npz",
                                                                                       "key": "edges"}),
               "cams": ("PerspectiveCameras", {}), "rel": ("RelativeCameras", {})},
              ["R.tensor -> cams.R", "cams.cameras -> rel.cameras", "e.tensor -> rel.edges"], base_dir=tmp_path)
    with pytest.raises(NodeError, match=r"rel\.edges.*camera 7 but there are 2"):
        g.run(device="cpu")
    np.savez(tmp_path / "g.npz", edges=np.array([[-1, 1]]), R=np.eye(3)[None].repeat(2, 0), words=np.array(["a"]))
    with pytest.raises(NodeError, match=r"rel\.edges.*camera -1 but there are 2"):
        g.run(device="cpu")
    with pytest.raises(NodeError, match=r"m\.key.*no array 'nope'"):
        build({"m": ("LoadTensor", {"file": "g.npz", "key": "nope"})}, [], base_dir=tmp_path).run(device="cpu")
    with pytest.raises(NodeError, match=r"m\.file.*not numbers"):
        build({"m": ("LoadTensor", {"file": "g.npz", "key": "words"})}, [], base_dir=tmp_path).run(device="cpu")


def test_graph_matches_the_handwritten_loop_step_for_step():
    g = nodegraph.load(ROOT / "graphs" / "bundle_adjustment.json")
    out = g.run(device="cpu", overrides={"optimize.iterations": 100})
    final, to_gt = handwritten(100)
    learned = out["absolute"]  # read after training: camera 0 is still the identity, the others moved
    assert torch.equal(learned["R"][0].detach(), torch.eye(3)) and torch.equal(learned["T"][0].detach(), torch.zeros(3))
    gen = torch.Generator().manual_seed(0)
    torch.randn(20, 3, generator=gen)
    assert (learned["T"][1:].detach() - torch.randn(20, 3, generator=gen)[1:]).abs().min() > 0
    assert float(out["final_distance"]["loss"].total.detach()) == pytest.approx(final, rel=1e-5)
    assert float(out["gt_distance"]["loss"].total.detach()) == pytest.approx(to_gt, rel=1e-5)


def test_example_at_tutorial_settings_reaches_the_handwritten_final_distance(graphs_dir):
    g = nodegraph.load(graphs_dir / "bundle_adjustment.json")
    assert g.validate() == []
    opt = g.nodes["optimize"].params
    assert (opt["optimizer"], opt["lr"], opt["momentum"], opt["iterations"]) == ("sgd", 0.1, 0.9, 2000)
    out = g.run(device="cpu")
    final = float(out["final_distance"]["loss"].total.detach())
    to_gt = float(out["gt_distance"]["loss"].total.detach())
    start = out["optimize"]["history"].series["total"][0]
    assert start > 10 and final < 0.0105  # from ~24 down to the tutorial's ~1e-2
    assert final == pytest.approx(HANDWRITTEN_FINAL, rel=1e-3)
    assert to_gt == pytest.approx(HANDWRITTEN_TO_GT, rel=1e-3)
