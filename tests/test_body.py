"""SMPL body nodes: the stand-in model, skinning against smplx, keypoints, SMPLify terms, bad input, graphs."""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nodegraph
from nodegraph.errors import GraphError, NodeError
from nodegraph.session import Session
from nodegraph.nodes import _smpl
from nodegraph.nodes._smpl import SMPL_JOINT_NAMES, BodyParams

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "graphs" / "assets" / "standin_body" / "standin_body.npz"
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="module")
def arrays() -> dict:
    with np.load(STANDIN) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def model():
    return _smpl.load_body_model(STANDIN, allow_pickle=False)


def body_graph(tmp_path: Path, file: str = "standin_body.npz", **params) -> Session:
    """model -> params -> forward, with the stand-in (or another file) copied next to the graph."""
    if file == "standin_body.npz":
        (tmp_path / file).write_bytes(STANDIN.read_bytes())
    g = nodegraph.new(name="body", base_dir=tmp_path)
    g.add_node("LoadBodyModel", "model", file=file)
    g.add_node("SMPLParamsFixed", "params", **params)
    g.add_node("SMPLForward", "body")
    g.connect("model", "model", "body", "model")
    g.connect("params", "params", "body", "params")
    return g


def error_of(g: Session, **kw) -> NodeError:
    with pytest.raises(NodeError) as info:
        g.run(device="cpu", **kw)
    return info.value


def set_joint(pose: torch.Tensor, name: str, value) -> None:
    k = SMPL_JOINT_NAMES.index(name) - 1
    pose[:, 3 * k:3 * k + 3] = torch.as_tensor(value, dtype=pose.dtype)


# ------------------------------------------------------------------------------------------ stand-in


def test_standin_is_small_regenerable_and_says_it_is_a_stand_in(arrays):
    import make_standin_body

    assert STANDIN.stat().st_size < 2_000_000
    assert 1000 < len(arrays["v_template"]) <= 5000
    assert "stand-in" in str(arrays["description"]) and "NOT the SMPL model" in str(arrays["description"])
    assert "stand-in" in (STANDIN.parent / "README.md").read_text()
    fresh = make_standin_body.make()  # deterministic: the generator reproduces the shipped file exactly
    assert sorted(fresh) == sorted(arrays)
    for key, value in fresh.items():
        np.testing.assert_array_equal(value, arrays[key], err_msg=key)


def test_standin_has_smpl_layout_and_a_sane_body(arrays, model):
    V = len(arrays["v_template"])
    assert arrays["shapedirs"].shape == (V, 3, 10) and arrays["posedirs"].shape == (V, 3, 207)
    assert arrays["J_regressor"].shape == (24, V) and arrays["weights"].shape == (V, 24)
    assert arrays["kintree_table"][0, 1:].tolist() == _smpl.SMPL_PARENTS[1:]
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-5)
    assert (arrays["weights"] >= 0).all() and (arrays["weights"] > 0).sum(1).max() >= 2  # smooth, blended
    joints = arrays["J_regressor"] @ arrays["v_template"]
    height = np.ptp(arrays["v_template"][:, 1])
    assert 1.5 < height < 2.0  # metres, SMPL-like
    assert joints[15, 1] > joints[12, 1] > joints[9, 1] > joints[0, 1] > joints[4, 1] > joints[7, 1]  # up = +y
    assert joints[16, 0] > 0 > joints[17, 0]  # the body's left is +x
    # the faces are outward-oriented: the signed volume of the closed tubes is positive
    v, f = arrays["v_template"].astype(np.float64), arrays["f"]
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert volume > 0.03


# ------------------------------------------------------------------------------------------ forward


def smplx_reference(arrays: dict, betas, body_pose, global_orient, transl):
    """smplx's own SMPL class, built from the same arrays (its extra vertex joints pointed at vertex 0)."""
    from smplx import SMPL
    from smplx.utils import Struct

    keys = ["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe",
            "RHeel"] + [h + t for h in "lr" for t in ("thumb", "index", "middle", "ring", "pinky")]
    smpl = SMPL(model_path="unused", data_struct=Struct(**arrays), vertex_ids={k: 0 for k in keys},
                batch_size=betas.shape[0])
    out = smpl(betas=betas, body_pose=body_pose, global_orient=global_orient, transl=transl)
    return out.vertices, out.joints[:, :24]


def test_forward_matches_smplx_vertex_for_vertex(tmp_path, arrays):
    g = body_graph(tmp_path, batch=5)
    model = g.run(device="cpu", targets=["model"])["model"]["model"]
    torch.manual_seed(0)
    params = BodyParams(betas=torch.randn(5, 10), body_pose=0.4 * torch.randn(5, 69),
                        global_orient=0.5 * torch.randn(5, 3), transl=torch.randn(5, 3))
    out = g.executor.call("body", {"model": model, "params": params})
    ref_verts, ref_joints = smplx_reference(arrays, params.betas, params.body_pose, params.global_orient,
                                            params.transl)
    torch.testing.assert_close(out["mesh"].verts_padded(), ref_verts, atol=2e-5, rtol=0)
    torch.testing.assert_close(out["joints"], ref_joints, atol=2e-5, rtol=0)
    assert out["mesh"].faces_padded().shape == (5, len(arrays["f"]), 3)
    assert out["mesh"].textures is not None


def test_forward_is_smpl_semantics(model):
    """Rest pose: template + shape blend; the regressor gives the joints; a joint's rotation moves its subtree
    rigidly about the joint, and the pose correctives act only near bent joints."""
    betas = torch.zeros(1, 10)
    betas[0, 0] = 1.5
    rest = BodyParams(betas, torch.zeros(1, 69), torch.zeros(1, 3), torch.zeros(1, 3))
    verts, joints = _smpl.smpl_forward(model, rest)
    shaped = model.v_template + model.shapedirs[..., 0] * 1.5
    torch.testing.assert_close(verts[0], shaped, atol=1e-5, rtol=0)
    torch.testing.assert_close(joints[0], model.J_regressor @ shaped, atol=1e-5, rtol=0)

    pose = torch.zeros(1, 69)
    set_joint(pose, "left_elbow", [0.0, -np.pi / 2, 0.0])
    bent = BodyParams(betas, pose, torch.zeros(1, 3), torch.zeros(1, 3))
    _, bent_joints = _smpl.smpl_forward(model, bent)
    elbow, wrist = (SMPL_JOINT_NAMES.index(n) for n in ("left_elbow", "left_wrist"))
    forearm = joints[0, wrist] - joints[0, elbow]
    R = torch.tensor([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])  # -90 degrees about y: +x -> +z (forwards)
    torch.testing.assert_close(bent_joints[0, wrist], joints[0, elbow] + R @ forearm, atol=1e-5, rtol=0)
    torch.testing.assert_close(bent_joints[0, :elbow], joints[0, :elbow], atol=1e-6, rtol=0)
    assert float(forearm[0]) > 0.1 and float(bent_joints[0, wrist, 2] - joints[0, elbow, 2]) > 0.1


def test_forward_batch_translation_and_gradients(tmp_path):
    g = body_graph(tmp_path, batch=2, transl=[0.0, 1.0, 0.0], betas=[0.5])
    out = g.run(device="cpu")["body"]
    assert out["joints"].shape == (2, 24, 3)
    assert abs(float(out["joints"][0, 0, 1]) - (1.0 - 0.22)) < 0.03  # pelvis lifted by transl
    model = g.executor.value("model")["model"]
    params = BodyParams(*(torch.zeros(1, n, requires_grad=True) for n in (10, 69, 3, 3)))
    res = g.executor.call("body", {"model": model, "params": params})
    (res["mesh"].verts_padded().square().sum() + res["joints"].sum()).backward()
    assert all(float(t.grad.abs().sum()) > 0 for t in (params.betas, params.body_pose, params.global_orient,
                                                        params.transl))


# ------------------------------------------------------------------------------------------ bad input


def write_model(tmp_path: Path, arrays: dict, drop=(), **replace) -> str:
    data = {k: v for k, v in arrays.items() if k not in drop}
    data.update(replace)
    np.savez(tmp_path / "user_model.npz", **data)
    return "user_model.npz"


def test_model_file_missing_an_array_names_it(tmp_path, arrays):
    err = error_of(body_graph(tmp_path, file=write_model(tmp_path, arrays, drop=("posedirs",))))
    assert (err.problem.node, err.problem.field) == ("model", "file")
    assert "posedirs" in err.problem.message and "lacks" in err.problem.message


@pytest.mark.parametrize("key,bad,expected", [
    ("posedirs", np.zeros((10, 3, 207)), "(2"),
    ("J_regressor", np.zeros((23, 5)), "(24, "),
    ("weights", np.zeros((4, 4)), "(vertices, joints)"),
    ("kintree_table", np.zeros((2, 10), dtype=np.int64), "J >= 24"),
])
def test_model_file_with_wrong_shapes_names_array_and_expected_shape(tmp_path, arrays, key, bad, expected):
    err = error_of(body_graph(tmp_path, file=write_model(tmp_path, arrays, **{key: bad})))
    assert (err.problem.node, err.problem.field) == ("model", "file")
    assert repr(key) in err.problem.message and expected in err.problem.message


def test_betas_longer_than_the_model_has(tmp_path):
    g = body_graph(tmp_path, num_betas=12, betas=[0.1] * 12)
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("body", "params")
    assert "12" in err.problem.message and "10 shape directions" in err.problem.message
    g.connect("model", "model", "params", "model")  # with the model wired in, the params node says it itself
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("params", "num_betas")


def test_pose_of_the_wrong_size_and_bad_joint_names_fail_validation(tmp_path):
    g = body_graph(tmp_path, body_pose=[0.1] * 10, pose_by_joint="left_elbw: 0 0 1\nneck: 0 1")
    problems = {(p.node, p.field): p.message for p in g.validate()}
    assert "69 numbers" in problems[("params", "body_pose")]
    g = body_graph(tmp_path, pose_by_joint="left_elbw: 0 0 1")
    problems = {(p.node, p.field): p.message for p in g.validate()}
    assert "unknown joint 'left_elbw'" in problems[("params", "pose_by_joint")]
    g = body_graph(tmp_path, pose_by_joint="neck: 0 1", betas=[0.0] * 11)
    problems = {(p.node, p.field): p.message for p in g.validate()}
    assert "three axis-angle numbers" in problems[("params", "pose_by_joint")]
    assert "num_betas is 10" in problems[("params", "betas")]
    with pytest.raises(GraphError):
        g.run(device="cpu")


def test_gender_mismatch_is_refused(tmp_path, arrays):
    g = body_graph(tmp_path, file=write_model(tmp_path, arrays, gender=np.asarray("female")))
    g.set_param("model", "gender", "male")
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("model", "gender") and "female" in err.problem.message
    g.set_param("model", "gender", "female")
    assert g.run(device="cpu", targets=["model"])["model"]["model"].gender == "female"


def test_pickle_needs_explicit_opt_in_and_then_loads_only_data(tmp_path, arrays):
    data = {k: arrays[k] for k in _smpl.REQUIRED}
    data["J_regressor"] = data["J_regressor"].astype(np.float64)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(data, protocol=2))
    g = body_graph(tmp_path, file="model.pkl")
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("model", "allow_pickle")
    assert "can run code" in err.problem.message
    g.set_param("model", "allow_pickle", True)
    verts = g.run(device="cpu")["body"]["mesh"].verts_padded()
    model = _smpl.load_body_model(STANDIN, False)
    torch.testing.assert_close(verts[0], model.v_template, atol=1e-6, rtol=0)


def test_an_npz_with_object_arrays_loads_with_allow_pickle_only(tmp_path, arrays):
    """Real SMPL .npz files keep some arrays as pickled objects; numpy 2.4's public API reads them."""
    wrapped = np.empty((), dtype=object)
    wrapped[()] = arrays["shapedirs"].astype(np.float64)
    g = body_graph(tmp_path, file=write_model(tmp_path, arrays, shapedirs=wrapped))
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("model", "allow_pickle") and "shapedirs" in err.problem.message
    model = _smpl.load_body_model(tmp_path / "user_model.npz", allow_pickle=True)
    np.testing.assert_allclose(model.shapedirs.numpy(), arrays["shapedirs"], atol=1e-6)
    g.set_param("model", "allow_pickle", True)
    assert g.run(device="cpu")["body"]["mesh"].verts_padded().shape[1] == arrays["v_template"].shape[0]


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {EVIL_MARKER}",))


EVIL_MARKER = ""


def test_hostile_pickle_is_refused_even_with_opt_in(tmp_path, arrays):
    global EVIL_MARKER
    EVIL_MARKER = str(tmp_path / "pwned")
    data = {k: arrays[k] for k in _smpl.REQUIRED}
    data["payload"] = _Evil()
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(data, protocol=2))
    g = body_graph(tmp_path, file="evil.pkl")
    g.set_param("model", "allow_pickle", True)
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("model", "file")
    assert "refused" in err.problem.message and "system" in err.problem.message
    assert not Path(EVIL_MARKER).exists()


def test_chumpy_and_sparse_arrays_in_a_pickle_become_plain_numbers(tmp_path, arrays):
    """SMPL's own .pkl holds chumpy arrays and a scipy.sparse regressor; neither library needs to be present."""
    import types

    fake = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch"),
            "scipy": types.ModuleType("scipy"), "scipy.sparse": types.ModuleType("scipy.sparse"),
            "scipy.sparse._csc": types.ModuleType("scipy.sparse._csc")}

    class Ch:  # what chumpy pickles: the instance dict with the array under 'x'
        pass

    class csc_matrix:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse._csc", "csc_matrix"
    fake["chumpy.ch"].Ch, fake["scipy.sparse._csc"].csc_matrix = Ch, csc_matrix
    shapedirs = Ch()
    shapedirs.x = arrays["shapedirs"].astype(np.float64)
    reg = arrays["J_regressor"]
    cols = [np.nonzero(reg[:, j])[0] for j in range(reg.shape[1])]
    sparse = csc_matrix()
    sparse.__dict__.update(data=np.concatenate([reg[c, j] for j, c in enumerate(cols)]),
                           indices=np.concatenate(cols),
                           indptr=np.concatenate([[0], np.cumsum([len(c) for c in cols])]), _shape=reg.shape)
    data = {k: arrays[k] for k in _smpl.REQUIRED}
    data.update(shapedirs=shapedirs, J_regressor=sparse)
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        blob = pickle.dumps(data, protocol=2)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = v
    (tmp_path / "smpl_style.pkl").write_bytes(blob)
    model = _smpl.load_body_model(tmp_path / "smpl_style.pkl", allow_pickle=True)
    np.testing.assert_allclose(model.shapedirs.numpy(), arrays["shapedirs"], atol=1e-7)
    np.testing.assert_allclose(model.J_regressor.numpy(), reg, atol=1e-7)


# ------------------------------------------------------------------------------------------ keypoints


def camera_graph(tmp_path: Path, size: int = 64) -> Session:
    g = body_graph(tmp_path, pose_by_joint="left_shoulder: 0 0 -0.8\nright_elbow: 0 0 -0.9",
                   global_orient=[0.0, 0.4, 0.0])
    g.add_node("LookAtViewTransform", "view", dist=3.0, elev=5.0, azim=0.0, at=[0.0, -0.25, 0.0])
    g.add_node("FoVPerspectiveCameras", "camera", fov=45.0)
    g.connect("view", "R", "camera", "R")
    g.connect("view", "T", "camera", "T")
    g.add_node("ProjectJoints", "project", image_size=size)
    g.connect("camera", "cameras", "project", "cameras")
    g.connect("body", "joints", "project", "joints")
    return g


def test_projected_joints_land_on_the_rendered_body(tmp_path):
    g = camera_graph(tmp_path, size=64)
    g.add_node("RasterizationSettings", "raster", image_size=64)
    g.add_node("MeshRasterizer", "rasterizer")
    g.add_node("SoftSilhouetteShader", "shader")
    g.add_node("MeshRenderer", "render")
    g.connect("camera", "cameras", "rasterizer", "cameras")
    g.connect("raster", "settings", "rasterizer", "settings")
    g.connect("rasterizer", "rasterizer", "render", "rasterizer")
    g.connect("shader", "shader", "render", "shader")
    g.connect("body", "mesh", "render", "meshes")
    out = g.run(device="cpu")
    alpha = out["render"]["images"][0, ..., 3] > 0.5
    kp = out["project"]["keypoints"]
    assert kp.xy.shape == (1, 24, 2) and kp.image_size == (64, 64) and bool((kp.conf == 1).all())
    px = kp.xy[0].floor().long()
    inside = [bool(alpha[y, x]) for x, y in px.tolist()]
    assert sum(inside) >= 22, inside  # joints sit inside the limbs; a flipped axis would miss most
    assert alpha.float().mean() > 0.05 and not bool(alpha.all())
    left = SMPL_JOINT_NAMES.index("left_wrist")
    assert float(kp.xy[0, left, 0]) > 32  # seen from the front, the body's left is on the image's right


def test_keypoints_save_load_roundtrip_and_openpose(tmp_path):
    g = camera_graph(tmp_path, size=80)
    g.add_node("SaveKeypoints", "save", filename="kp.json")
    g.connect("project", "keypoints", "save", "keypoints")
    out = g.run(device="cpu", out_dir=tmp_path / "out")
    kp = out["project"]["keypoints"]
    (tmp_path / "kp.json").write_bytes((tmp_path / "out" / "kp.json").read_bytes())
    doc = json.loads((tmp_path / "kp.json").read_text())
    assert doc["image_size"] == [80, 80] and len(doc["keypoints"][0]) == 24

    body25 = np.zeros((25, 3))
    body25[4] = [10.0, 20.0, 0.9]  # RWrist
    body25[0] = [50.0, 5.0, 1.0]  # Nose: no SMPL joint
    (tmp_path / "openpose.json").write_text(json.dumps(
        {"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]}))
    np.save(tmp_path / "plain.npy", kp.xy[0].numpy())
    g2 = nodegraph.new(name="kp", base_dir=tmp_path)
    g2.add_node("LoadKeypoints", "ours", file="kp.json", image_size=999)
    g2.add_node("LoadKeypoints", "openpose", file="openpose.json", image_size=100)
    g2.add_node("LoadKeypoints", "npy", file="plain.npy", image_size=80)
    res = g2.run(device="cpu")
    ours = res["ours"]["keypoints"]
    assert ours.image_size == (80, 80)  # the file's size wins over the param
    torch.testing.assert_close(ours.xy, kp.xy, atol=2e-3, rtol=0)
    op = res["openpose"]["keypoints"]
    rw = SMPL_JOINT_NAMES.index("right_wrist")
    assert op.xy[0, rw].tolist() == [10.0, 20.0] and abs(float(op.conf[0, rw]) - 0.9) < 1e-6
    assert int((op.conf > 0).sum()) == 1 and op.image_size == (100, 100)
    assert bool((res["npy"]["keypoints"].conf == 1).all())

    (tmp_path / "bad.npy").write_bytes(b"")
    np.save(tmp_path / "bad.npy", np.zeros((17, 3)))
    g3 = nodegraph.new(name="bad", base_dir=tmp_path)
    g3.add_node("LoadKeypoints", "kp", file="bad.npy")
    err = error_of(g3)
    assert (err.problem.node, err.problem.field) == ("kp", "file") and "17 keypoints" in err.problem.message


def test_draw_skeleton_draws_bones_only_near_the_joints(tmp_path):
    kp = np.zeros((24, 3))
    kp[:, 0] = np.linspace(10, 50, 24)
    kp[:, 1] = 32.0
    kp[:, 2] = 1.0
    kp[23, 2] = 0.0  # right hand missing: neither it nor its bone is drawn
    np.save(tmp_path / "line.npy", kp)
    g = nodegraph.new(name="draw", base_dir=tmp_path)
    g.add_node("LoadKeypoints", "kp", file="line.npy", image_size=64)
    g.add_node("DrawSkeleton", "draw", thickness=2.0, color=[0.0, 1.0, 0.0], background=[0.25, 0.25, 0.25])
    g.connect("kp", "keypoints", "draw", "keypoints")
    previews = []
    g.executor.bus.subscribe(lambda e: previews.append(e) if e["type"] == "preview" else None)
    out = g.run(device="cpu")["draw"]["image"]
    assert out.shape == (1, 64, 64, 3)
    changed = (out[0] - 0.25).abs().sum(-1) > 1e-3
    assert bool(changed[32, 20]) and not bool(changed[5, 5]) and not bool(changed[50, 32])
    assert not bool(changed[32, 50])  # joint 23 (x = 50) has confidence 0
    assert float(changed.float().mean()) < 0.15
    assert any(e["node"] == "draw" for e in previews)


def test_body_meshes_equal_plain_meshes_and_carry_gradients(model):
    from pytorch3d.structures import Meshes

    torch.manual_seed(1)
    params = BodyParams(torch.zeros(3, 10), (0.3 * torch.randn(3, 69)).requires_grad_(), torch.zeros(3, 3),
                        torch.zeros(3, 3))
    verts, _ = _smpl.smpl_forward(model, params)
    fast = _smpl.body_meshes(model, verts)
    again = _smpl.body_meshes(model, verts * 2)
    plain = Meshes(verts=verts, faces=model.faces.expand(3, -1, -1))
    for name in ("verts_packed", "faces_packed", "verts_normals_packed", "faces_areas_packed", "edges_packed",
                 "num_faces_per_mesh", "num_verts_per_mesh"):
        torch.testing.assert_close(getattr(fast, name)(), getattr(plain, name)(), msg=name)
    torch.testing.assert_close(again.verts_padded(), 2 * verts)  # each call is its own Meshes
    assert fast.verts_packed() is not again.verts_packed()
    fast.verts_normals_packed().sum().backward()
    assert float(params.body_pose.grad.abs().sum()) > 0


def test_project_joints_batch_rules(tmp_path):
    g = camera_graph(tmp_path)
    g.set_param("params", "batch", 3)
    g.set_param("view", "views", 2)
    g.set_param("view", "azim_end", 30.0)
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("project", "cameras") and "2 cameras for 3 bodies" in str(err)
    g.set_param("params", "batch", 1)  # one body, two cameras: one view per camera
    kp = g.run(device="cpu")["project"]["keypoints"]
    assert kp.xy.shape == (2, 24, 2) and float((kp.xy[0] - kp.xy[1]).abs().max()) > 1
    g.set_param("params", "batch", 3)  # three bodies, one camera
    g.set_param("view", "views", 1)
    g.set_param("view", "azim_end", None)
    many = g.run(device="cpu")["project"]["keypoints"]
    assert many.xy.shape == (3, 24, 2)
    torch.testing.assert_close(many.xy[2], kp.xy[0])


# ------------------------------------------------------------------------------------------ SMPLify terms


def test_joint_loss_is_confidence_weighted_geman_mcclure(tmp_path):
    pred = np.zeros((24, 3))
    pred[:, 2] = 1.0
    target = np.zeros((24, 3))
    target[:, 0] = 30.0  # every joint 30 px off in x
    target[:, 2] = 0.5
    target[1, 2] = 2.0  # left hip counts 4x
    np.save(tmp_path / "pred.npy", pred)
    np.save(tmp_path / "target.npy", target)
    g = nodegraph.new(name="loss", base_dir=tmp_path)
    g.add_node("LoadKeypoints", "pred", file="pred.npy")
    g.add_node("LoadKeypoints", "target", file="target.npy")
    g.add_node("SMPLifyJointLoss", "all", sigma=50.0, weight=2.0)
    g.add_node("SMPLifyJointLoss", "torso", sigma=50.0, joints="torso")
    for n in ("all", "torso"):
        g.connect("pred", "keypoints", n, "keypoints")
        g.connect("target", "keypoints", n, "target")
    out = g.run(device="cpu")
    rho = 50.0 ** 2 * 30.0 ** 2 / (50.0 ** 2 + 30.0 ** 2)
    loss = out["all"]["loss"]
    assert abs(float(loss.terms["all"]) - rho * (23 * 0.5 + 2.0)) < 1e-2
    assert abs(float(loss.total) - 2 * float(loss.terms["all"])) < 1e-2
    assert abs(float(out["torso"]["loss"].terms["torso"]) - rho * (3 * 0.5 + 2.0)) < 1e-2


def test_priors(tmp_path):
    pose = np.zeros(69)
    pose[52], pose[55], pose[9], pose[12] = 0.5, -0.5, 0.2, 0.3  # elbows y, knees x (body_pose indices)
    pose[0] = 1.0
    g = nodegraph.new(name="priors", base_dir=tmp_path)
    g.add_node("SMPLParamsFixed", "p", body_pose=pose.tolist(), betas=[1.0, 2.0])
    for t in ("SMPLifyPosePrior", "SMPLifyAnglePrior", "SMPLifyShapePrior"):
        g.add_node(t, t)
        g.connect("p", "params", t, "params")
    means = np.zeros((2, 69))
    means[1, 0] = 1.0
    covars = np.stack([np.eye(69), 4 * np.eye(69)])
    np.savez(tmp_path / "gmm.npz", means=means, covars=covars, weights=np.array([0.5, 0.5]))
    g.add_node("SMPLifyPosePrior", "gmm", file="gmm.npz")
    g.connect("p", "params", "gmm", "params")
    out = g.run(device="cpu")
    value = {n: float(out[n]["loss"].total) for n in out if "loss" in out[n]}
    assert abs(value["SMPLifyPosePrior"] - float((pose ** 2).sum())) < 1e-5
    expected_angle = np.exp(2 * 0.5) + np.exp(2 * 0.5) + np.exp(-2 * 0.2) + np.exp(-2 * 0.3)
    assert abs(value["SMPLifyAnglePrior"] - expected_angle) < 1e-4
    assert abs(value["SMPLifyShapePrior"] - 5.0) < 1e-6
    # max-mixture: component 0 costs 0.5 * |x|^2 - log 0.5; component 1 (centred on x[0]=1, wider) less
    x = pose.copy()
    c0 = 0.5 * (x ** 2).sum() - np.log(0.5)
    x[0] -= 1.0
    c1 = 0.5 * (x ** 2).sum() / 4 - np.log(0.5) + 0.5 * 69 * np.log(4)
    assert abs(value["gmm"] - min(c0, c1)) < 1e-3

    np.savez(tmp_path / "bad_gmm.npz", means=np.zeros((2, 10)), covars=covars, weights=np.ones(2))
    g.set_param("gmm", "file", "bad_gmm.npz")
    err = error_of(g)
    assert (err.problem.node, err.problem.field) == ("gmm", "file") and "(K, 69)" in err.problem.message
    (tmp_path / "gmm.pkl").write_bytes(pickle.dumps({"means": means}))
    g.set_param("gmm", "file", "gmm.pkl")
    assert error_of(g).problem.field == "allow_pickle"


# ------------------------------------------------------------------------------------------ example graphs


def test_pose_and_render_graph(graphs_dir, tmp_path):
    g = nodegraph.load(graphs_dir / "smpl_pose_and_render.json")
    g.set_params({"raster.image_size": 48, "project.image_size": 48})
    out = g.run(device="cpu", out_dir=tmp_path)
    images = out["render"]["images"]
    assert images.shape == (3, 48, 48, 4)
    coverage = (images[..., 3] > 0.5).float().mean(dim=(1, 2))
    assert bool((coverage > 0.05).all()) and bool((coverage < 0.6).all())
    for name in ("smpl_render.png", "smpl_skeleton.png", "smpl_body.obj"):
        assert (tmp_path / name).stat().st_size > 500
    obj_verts = sum(1 for line in (tmp_path / "smpl_body.obj").read_text().splitlines() if line.startswith("v "))
    assert obj_verts == out["body"]["mesh"].verts_padded().shape[1]
    assert not torch.equal(out["skeleton"]["image"], images[..., :3])  # the skeleton was drawn


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")  # a repeatable run (conftest.py)
def test_smplify_fit_recovers_the_known_pose(graphs_dir, tmp_path):
    g = nodegraph.load(graphs_dir / "smplify_fit_keypoints.json")
    g.set_param("raster", "image_size", 96)  # the target render is only the overlay's background
    out = g.run(device="cpu", out_dir=tmp_path)
    assert out["error"]["relative"] < 0.03, out["error"]
    assert out["error"]["relative"] < 0.5 * _relative_error_at_start(g)
    # stage 1 moved only orientation and translation; stage 2 then changed pose and shape too
    stage1 = {name[1]: t for name, t in g.executor.snapshots["stage1"]["fit"].items()}
    assert float(stage1["body_pose"].abs().max()) == 0 and float(stage1["betas"].abs().max()) == 0
    assert float(stage1["transl"].abs().max()) > 0.01
    stage2 = {name[1]: t for name, t in g.executor.snapshots["stage2"]["fit"].items()}
    assert float(stage2["body_pose"].abs().max()) > 0.3
    history = out["stage2"]["history"].series
    assert history["joints_2d"][-1] < 0.05 * history["joints_2d"][0]
    for name in ("fit_over_target.png", "fitted_body.obj", "target_keypoints.json"):
        assert (tmp_path / name).stat().st_size > 500
    assert out["overlay"]["image"].shape == (1, 96, 96, 3)


def _relative_error_at_start(g: Session) -> float:
    ex = g.executor
    truth = ex.value("truth_body")
    start = _smpl.smpl_forward(ex.value("model")["model"], BodyParams(
        torch.zeros(1, 10), torch.zeros(1, 69), torch.zeros(1, 3), torch.zeros(1, 3)))[1][:, :24]
    height = float(np.ptp(truth["mesh"].verts_padded()[0, :, 1].numpy()))
    return float((start - truth["joints"]).norm(dim=-1).mean()) / height
