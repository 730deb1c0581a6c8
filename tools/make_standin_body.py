"""Write the project's stand-in body model: a small, generated body in the SMPL file layout.

The official SMPL files cannot be shipped, so every SMPL graph and test uses this stand-in instead. It has
SMPL's 24 joints and kinematic tree, SMPL's axes (y up, facing +z, the body's left on +x, T-pose), a body
made of tapered elliptical tubes (one per bone, overlapping at the joints), smooth linear-blend-skinning
weights, ten shape directions, pose correctives for the 207 pose features and a joint regressor. It is a
mannequin, not a scan: nothing in it is derived from SMPL data.

    python tools/make_standin_body.py            # writes graphs/assets/standin_body/standin_body.npz

The output is deterministic (no randomness), about 3.5k vertices, well under 2 MB.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "graphs" / "assets" / "standin_body" / "standin_body.npz"

JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand",
]
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SHAPE_NAMES = ["stature", "girth", "leg length", "shoulder width", "hip width", "arm length", "belly",
               "head size", "chest", "torso length"]
INF = 1e9
SEGMENTS = 12  # vertices around every tube


def _left_joints() -> dict[str, tuple[float, float, float]]:
    """Rest-pose joint positions of the left half and the spine, metres, SMPL-like proportions."""
    return {
        "pelvis": (0.0, -0.22, 0.0), "spine1": (0.0, -0.10, 0.0), "spine2": (0.0, 0.03, 0.0),
        "spine3": (0.0, 0.12, 0.0), "neck": (0.0, 0.29, -0.019), "head": (0.0, 0.37, -0.001),
        "left_hip": (0.08, -0.32, 0.0), "left_knee": (0.105, -0.70, 0.0), "left_ankle": (0.10, -1.08, -0.03),
        "left_foot": (0.11, -1.145, 0.07), "left_collar": (0.07, 0.20, -0.01),
        "left_shoulder": (0.18, 0.22, -0.01), "left_elbow": (0.44, 0.21, -0.02),
        "left_wrist": (0.68, 0.21, -0.02), "left_hand": (0.77, 0.21, -0.02),
    }


def joint_positions() -> np.ndarray:
    left = _left_joints()
    out = []
    for name in JOINT_NAMES:
        if name.startswith("right_"):
            x, y, z = left["left_" + name[6:]]
            out.append((-x, y, z))
        else:
            out.append(left[name])
    return np.asarray(out, dtype=np.float64)


@dataclass
class Tube:
    """A tapered elliptical tube along a straight axis a -> b, with rounded caps.

    ``stations``: (t, half_width, half_depth) along the axis, t in [0, 1]; ``width_dir`` is projected
    perpendicular to the axis. ``bones``: (joint, s_start, s_end) in metres along the axis: which joint's
    transform moves which stretch of the tube (the parent's region before, the child's after).
    ``ring_joints``: joints whose regressor uses a ring of this tube placed exactly at the joint.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    stations: list
    width_dir: tuple
    bones: list
    ring_joints: list
    cap: float = 1.0  # cap length as a fraction of the end radius
    blend: float = 0.02  # metres: width of the skinning blend across a joint


def _frame(a: np.ndarray, b: np.ndarray, width_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    axis = b - a
    length = float(np.linalg.norm(axis))
    u = axis / length
    w = np.asarray(width_dir, dtype=np.float64)
    w = w - u * (w @ u)
    w /= np.linalg.norm(w)
    d = np.cross(u, w)
    return u, w, d, length


def build_tube(tube: Tube, joints: np.ndarray, rings_per_metre: float = 24.0):
    """Vertices, faces and per-vertex info (axial coordinate s, axis point) of one tube."""
    u, w, d, length = _frame(tube.a, tube.b, tube.width_dir)
    st = np.asarray(tube.stations, dtype=np.float64)

    def radii(t):
        return np.interp(t, st[:, 0], st[:, 1]), np.interp(t, st[:, 0], st[:, 2])

    n_body = max(3, int(round(length * rings_per_metre)))
    joint_ts = {j: float((joints[j] - tube.a) @ u / length) for j in tube.ring_joints}
    ts = [t for t in np.linspace(0.0, 1.0, n_body + 1)
          if all(abs(t - jt) > 0.35 / n_body for jt in joint_ts.values())]
    ts = sorted(ts + list(joint_ts.values()))
    rings = []  # (center, rw, rd, s)
    rw0, rd0 = radii(0.0)
    rw1, rd1 = radii(1.0)
    cap_rings = 3
    for k in range(cap_rings, 0, -1):  # start cap, from near the pole towards the body
        theta = k / (cap_rings + 1) * np.pi / 2
        s = -tube.cap * max(rw0, rd0) * np.sin(theta)
        rings.append((tube.a + u * s, rw0 * np.cos(theta), rd0 * np.cos(theta), s))
    joint_ring = {}
    for t in ts:
        rw, rd = radii(t)
        for j, jt in joint_ts.items():
            if jt == t:
                joint_ring[j] = len(rings)
        rings.append((tube.a + u * (t * length), rw, rd, t * length))
    for k in range(1, cap_rings + 1):
        theta = k / (cap_rings + 1) * np.pi / 2
        s = length + tube.cap * max(rw1, rd1) * np.sin(theta)
        rings.append((tube.a + u * s, rw1 * np.cos(theta), rd1 * np.cos(theta), s))
    phi = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    verts, s_of, axis_pt, ring_index = [], [], [], []
    for r, (c, rw, rd, s) in enumerate(rings):
        pts = c + np.outer(rw * np.cos(phi), w) + np.outer(rd * np.sin(phi), d)
        verts.append(pts)
        s_of += [s] * SEGMENTS
        axis_pt += [c] * SEGMENTS
        ring_index += [r] * SEGMENTS
    pole0 = tube.a - u * tube.cap * max(rw0, rd0)
    pole1 = tube.b + u * tube.cap * max(rw1, rd1)
    verts = np.concatenate([*verts, pole0[None], pole1[None]])
    s_of += [-tube.cap * max(rw0, rd0), length + tube.cap * max(rw1, rd1)]
    axis_pt += [pole0, pole1]
    n_rings = len(rings)
    faces = []
    for r in range(n_rings - 1):
        for k in range(SEGMENTS):
            a0, a1 = r * SEGMENTS + k, r * SEGMENTS + (k + 1) % SEGMENTS
            b0, b1 = a0 + SEGMENTS, a1 + SEGMENTS
            faces += [(a0, a1, b1), (a0, b1, b0)]
    p0, p1 = n_rings * SEGMENTS, n_rings * SEGMENTS + 1
    last = (n_rings - 1) * SEGMENTS
    for k in range(SEGMENTS):
        faces.append((p0, (k + 1) % SEGMENTS, k))
        faces.append((p1, last + k, last + (k + 1) % SEGMENTS))
    faces = np.asarray(faces, dtype=np.int64)
    # orient outwards: the normal of the first body face must point away from the axis
    tri = verts[faces[len(faces) // 2]]
    normal = np.cross(tri[1] - tri[0], tri[2] - tri[0])
    centre = np.asarray(axis_pt)[faces[len(faces) // 2]].mean(0)
    if normal @ (tri.mean(0) - centre) < 0:
        faces = faces[:, ::-1].copy()
    ring_verts = {j: list(range(r * SEGMENTS, (r + 1) * SEGMENTS)) for j, r in joint_ring.items()}
    return verts, faces, np.asarray(s_of), np.asarray(axis_pt), ring_verts


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def tube_weights(tube: Tube, s: np.ndarray, n_joints: int) -> np.ndarray:
    """Smooth skinning weights along the axis: 50/50 exactly at each joint, one bone away from it."""
    wts = np.zeros((len(s), n_joints))
    for joint, s0, s1 in tube.bones:
        wts[:, joint] += _sigmoid((s - s0) / (tube.blend / 4)) * _sigmoid((s1 - s) / (tube.blend / 4))
    wts /= wts.sum(1, keepdims=True)
    wts[wts < 1e-3] = 0.0
    return wts / wts.sum(1, keepdims=True)


def design(joints: np.ndarray) -> list[Tube]:
    """The body as tubes. Stations give the silhouette; bones give the skinning."""
    j = {n: joints[i] for i, n in enumerate(JOINT_NAMES)}
    idx = {n: i for i, n in enumerate(JOINT_NAMES)}
    tubes = []
    y0, y1 = -0.34, 0.28
    torso_a, torso_b = np.array([0.0, y0, 0.0]), np.array([0.0, y1, 0.0])
    span = y1 - y0

    def ty(y):
        return (y - y0) / span

    def sy(name):
        return j[name][1] - y0

    tubes.append(Tube(
        "torso", torso_a, torso_b,
        [(0.0, 0.135, 0.095), (ty(-0.22), 0.165, 0.11), (ty(-0.10), 0.145, 0.10), (ty(0.03), 0.14, 0.10),
         (ty(0.12), 0.16, 0.11), (ty(0.21), 0.17, 0.10), (1.0, 0.13, 0.075)],
        (1, 0, 0),
        [(idx["pelvis"], -INF, sy("spine1")), (idx["spine1"], sy("spine1"), sy("spine2")),
         (idx["spine2"], sy("spine2"), sy("spine3")), (idx["spine3"], sy("spine3"), INF)],
        [idx["pelvis"], idx["spine1"], idx["spine2"], idx["spine3"]], cap=0.45, blend=0.06))
    neck_dir = j["head"] - j["neck"]
    neck_a, neck_b = j["neck"] - 0.9 * neck_dir, j["neck"] + 1.6 * neck_dir
    u = (neck_b - neck_a) / np.linalg.norm(neck_b - neck_a)
    s_neck = float((j["neck"] - neck_a) @ u)
    s_head = float((j["head"] - neck_a) @ u)
    tubes.append(Tube("neck", neck_a, neck_b, [(0.0, 0.06, 0.055), (1.0, 0.05, 0.05)], (1, 0, 0),
                      [(idx["spine3"], -INF, s_neck), (idx["neck"], s_neck, s_head), (idx["head"], s_head, INF)],
                      [idx["neck"], idx["head"]], cap=0.5, blend=0.03))
    tubes.append(Tube("head", np.array([0.0, 0.42, 0.015]), np.array([0.0, 0.52, 0.02]),
                      [(0.0, 0.08, 0.095), (0.5, 0.088, 0.10), (1.0, 0.08, 0.092)], (1, 0, 0),
                      [(idx["neck"], -INF, -0.05), (idx["head"], -0.05, INF)], [], cap=0.9, blend=0.03))
    for side, sx in (("left", 1.0), ("right", -1.0)):
        def J(name):
            return j[f"{side}_{name}"]

        def I(name):
            return idx[f"{side}_{name}"]

        def seg(a_name, b_name, stations, width, parent, own, child, blend, cap=1.0):
            a, b = J(a_name), J(b_name)
            length = float(np.linalg.norm(b - a))
            tubes.append(Tube(f"{side}_{a_name}", a, b, stations, width,
                              [(parent, -INF, 0.0), (own, 0.0, length), (child, length, INF)],
                              [I(a_name), I(b_name)], cap=cap, blend=blend))

        seg("collar", "shoulder", [(0.0, 0.055, 0.06), (1.0, 0.06, 0.055)], (0, 1, 0),
            idx["spine3"], I("collar"), I("shoulder"), 0.04, cap=0.8)
        seg("shoulder", "elbow", [(0.0, 0.052, 0.05), (1.0, 0.04, 0.04)], (0, 1, 0),
            I("collar"), I("shoulder"), I("elbow"), 0.04)
        seg("elbow", "wrist", [(0.0, 0.04, 0.04), (0.3, 0.042, 0.04), (1.0, 0.03, 0.027)], (0, 1, 0),
            I("shoulder"), I("elbow"), I("wrist"), 0.035)
        seg("hip", "knee", [(0.0, 0.085, 0.085), (0.5, 0.07, 0.07), (1.0, 0.055, 0.055)], (1, 0, 0),
            idx["pelvis"], I("hip"), I("knee"), 0.05)
        seg("knee", "ankle", [(0.0, 0.055, 0.055), (0.3, 0.055, 0.058), (1.0, 0.037, 0.037)], (1, 0, 0),
            I("hip"), I("knee"), I("ankle"), 0.045)
        # hand: wrist -> finger tips, flat (width along z, thin along y)
        wrist = J("wrist")
        tip = wrist + np.array([sx * 0.19, 0.0, 0.0])
        s_hand = float(np.linalg.norm(J("hand") - wrist))
        tubes.append(Tube(f"{side}_hand", wrist, tip, [(0.0, 0.03, 0.022), (0.4, 0.045, 0.016),
                                                         (1.0, 0.035, 0.012)], (0, 0, 1),
                          [(I("elbow"), -INF, 0.0), (I("wrist"), 0.0, s_hand), (I("hand"), s_hand, INF)],
                          [I("hand")], cap=0.5, blend=0.03))
        # foot: heel -> toes, the foot joint on the axis
        heel = np.array([sx * 0.10, -1.125, -0.07])
        toe = heel + (J("foot") - heel) * 1.9
        s_foot = float(np.linalg.norm(J("foot") - heel))
        tubes.append(Tube(f"{side}_foot", heel, toe, [(0.0, 0.04, 0.035), (0.5, 0.048, 0.03),
                                                      (1.0, 0.045, 0.02)], (1, 0, 0),
                          [(I("ankle"), -INF, s_foot), (I("foot"), s_foot, INF)], [I("foot")], cap=0.6,
                          blend=0.03))
    return tubes


def shape_directions(v: np.ndarray, axis_pt: np.ndarray, part: np.ndarray, joints: np.ndarray,
                     torso: int) -> np.ndarray:
    """Ten smooth displacement fields (V, 3, 10), one per unit of beta; see SHAPE_NAMES."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    out = np.zeros((len(v), 3, 10))
    pelvis = joints[0]

    def smooth(t, lo, hi):
        t = np.clip((t - lo) / (hi - lo), 0.0, 1.0)
        return t * t * (3 - 2 * t)

    out[:, :, 0] = 0.05 * (v - pelvis)
    radial = v - axis_pt
    out[:, :, 1] = np.where((part == torso)[:, None], 0.12, 0.07) * radial
    hip_y, floor_y = -0.32, -1.17
    out[:, 1, 2] = -0.06 * np.clip(hip_y - y, 0.0, None) / (hip_y - floor_y) * (hip_y - floor_y)
    out[:, 0, 3] = 0.03 * np.tanh(x / 0.08) * smooth(y, 0.0, 0.16)
    out[:, 0, 4] = 0.025 * np.tanh(x / 0.06) * (1 - smooth(y, -0.16, -0.04))
    out[:, 0, 5] = 0.06 * np.sign(x) * np.clip(np.abs(x) - 0.18, 0.0, None)
    torso_front = (part == torso) & (z > 0)
    out[:, 2, 6] = np.where(torso_front, 0.05 * np.exp(-((y + 0.06) / 0.12) ** 2) * z / 0.1, 0.0)
    head_c = np.array([0.0, 0.47, 0.02])
    out[:, :, 7] = 0.08 * (v - head_c) * smooth(y, 0.33, 0.41)[:, None]
    out[:, 2, 8] = np.where(part == torso, 0.035 * np.exp(-((y - 0.13) / 0.08) ** 2) * z / 0.1, 0.0)
    out[:, 1, 9] = 0.06 * np.clip(y - pelvis[1], 0.0, 0.5)
    return out


def pose_correctives(v: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V, 3, 207): bulge the flesh around a bent joint outwards, by (1 - cos(angle)), against LBS's
    volume loss. SMPL's pose feature is (R_j - I) flattened for joints 1..23; -trace/2 = 1 - cos(angle)."""
    n_joints = len(joints)
    out = np.zeros((len(v), 3, 9 * (n_joints - 1)))
    for jnt in range(1, n_joints):
        parent = PARENTS[jnt]
        near = (weights[:, jnt] > 0) & (weights[:, parent] > 0)
        if not near.any():
            continue
        offset = v - joints[jnt]
        dist = np.linalg.norm(offset, axis=1)
        radius = np.percentile(dist[near], 50)
        fall = np.exp(-(dist / (1.2 * radius)) ** 2) * near
        direction = offset / np.maximum(dist, 1e-6)[:, None]
        bulge = 0.25 * radius * fall[:, None] * direction  # displacement at a 90 degree bend
        for diag in (0, 4, 8):
            out[:, :, 9 * (jnt - 1) + diag] = -0.5 * bulge
    return out


def joint_regressor(n_verts: int, ring_verts: dict[int, list[int]], n_joints: int) -> np.ndarray:
    """Each joint is the mean of the vertex rings placed exactly at it (ring centroids are the joint)."""
    reg = np.zeros((n_joints, n_verts))
    for jnt, verts in ring_verts.items():
        reg[jnt, verts] = 1.0
    return reg / reg.sum(1, keepdims=True)


def make() -> dict[str, np.ndarray]:
    joints = joint_positions()
    tubes = design(joints)
    verts, faces, weights, axis_pts, parts = [], [], [], [], []
    ring_verts: dict[int, list[int]] = {}
    offset = 0
    for p, tube in enumerate(tubes):
        v, f, s, axis_pt, rings = build_tube(tube, joints)
        verts.append(v)
        faces.append(f + offset)
        weights.append(tube_weights(tube, s, len(joints)))
        axis_pts.append(axis_pt)
        parts.append(np.full(len(v), p))
        for jnt, ids in rings.items():
            ring_verts.setdefault(jnt, []).extend(i + offset for i in ids)
        offset += len(v)
    v = np.concatenate(verts)
    weights = np.concatenate(weights)
    missing = [JOINT_NAMES[k] for k in range(len(joints)) if k not in ring_verts]
    assert not missing, f"joints without a regressor ring: {missing}"
    reg = joint_regressor(len(v), ring_verts, len(joints))
    assert np.abs(reg @ v - joints).max() < 1e-6
    part = np.concatenate(parts)
    kintree = np.stack([np.asarray(PARENTS), np.arange(len(joints))]).astype(np.int64)
    return {
        "v_template": v.astype(np.float32),
        "shapedirs": shape_directions(v, np.concatenate(axis_pts), part, joints, 0).astype(np.float32),
        "posedirs": pose_correctives(v, weights, joints).astype(np.float32),
        "J_regressor": reg.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "f": np.concatenate(faces).astype(np.int32),
        "joint_names": np.asarray(JOINT_NAMES),
        "shape_names": np.asarray(SHAPE_NAMES),
        "gender": np.asarray("neutral"),
        "description": np.asarray(
            "nodegraph stand-in body: a generated mannequin in the SMPL file layout (24 SMPL joints, 10 shape "
            "directions, 207 pose correctives). NOT the SMPL model; made by tools/make_standin_body.py."),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    arrays = make()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {len(arrays['v_template'])} vertices, "
          f"{len(arrays['f'])} faces, {arrays['shapedirs'].shape[2]} shape directions")


if __name__ == "__main__":
    main()
