"""SMPL model math and files for the body nodes (no node declarations here).

- :class:`BodyModel`: the arrays of an SMPL-layout model as torch tensors, read by :func:`load_body_model` from an
  ``.npz`` (never unpickling) or, only on explicit opt-in, an SMPL ``.pkl`` through a restricted unpickler.
- :func:`smpl_forward`: shape blend shapes, pose blend shapes, joint regression and linear blend skinning, all
  done by ``smplx.lbs.lbs`` on our tensors.
- :class:`BodyParams`, :class:`Keypoints`: the values that flow on the BodyParams and Keypoints ports.
- keypoint files (JSON / NPY, OpenPose BODY_25 mapped onto SMPL joints) and the skeleton drawing.
"""
from __future__ import annotations

import copy
import io
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch3d.structures import Meshes
from smplx.lbs import lbs

SMPL_JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand",
]
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
NUM_BODY_JOINTS = 23  # SMPL's body pose: 23 joints below the root, 3 axis-angle numbers each
REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
TORSO_JOINTS = [1, 2, 16, 17]  # hips and shoulders: what SMPLify's first stage (camera/orientation) fits
# OpenPose BODY_25 keypoint -> SMPL joint (approximate: OpenPose's hips sit lower and wider than SMPL's)
BODY25_TO_SMPL = {1: 12, 2: 17, 3: 19, 4: 21, 5: 16, 6: 18, 7: 20, 8: 0, 9: 2, 10: 5, 11: 8, 12: 1, 13: 4,
                  14: 7}


class BodyFileError(ValueError):
    """A problem with a user's file, naming the param it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------------------- values


@dataclass
class BodyModel:
    """An SMPL-layout body model on a device. ``posedirs`` is stored as (P, V*3), the layout lbs wants."""

    v_template: torch.Tensor  # (V, 3)
    shapedirs: torch.Tensor  # (V, 3, NB)
    posedirs: torch.Tensor  # (9 * (J - 1), V * 3)
    J_regressor: torch.Tensor  # (J, V)
    parents: torch.Tensor  # (J,) long, parents[0] = -1
    weights: torch.Tensor  # (V, J)
    faces: torch.Tensor  # (F, 3) long
    gender: str | None = None
    joint_names: list[str] = field(default_factory=lambda: list(SMPL_JOINT_NAMES))
    description: str = ""
    source: str = ""

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    def summary(self) -> dict:
        return {"kind": "BodyModel", "source": self.source, "verts": int(self.v_template.shape[0]),
                "faces": int(self.faces.shape[0]), "joints": self.num_joints, "betas": self.num_betas,
                "gender": self.gender, "description": self.description[:120], "device": str(self.v_template.device)}


@dataclass
class BodyParams:
    """SMPL parameters for a batch of B bodies (axis-angle rotations in radians)."""

    betas: torch.Tensor  # (B, NB)
    body_pose: torch.Tensor  # (B, 69)
    global_orient: torch.Tensor  # (B, 3)
    transl: torch.Tensor  # (B, 3)

    @property
    def batch(self) -> int:
        return max(t.shape[0] for t in (self.betas, self.body_pose, self.global_orient, self.transl))

    def summary(self) -> dict:
        return {"kind": "BodyParams", "batch": self.batch, "betas": list(self.betas.shape),
                "body_pose": list(self.body_pose.shape), "global_orient": self.global_orient.detach().cpu()
                .flatten()[:3].tolist(), "transl": self.transl.detach().cpu().flatten()[:3].tolist()}


@dataclass
class Keypoints:
    """2D joints in pixels (x right, y down, origin at the image's top-left corner) with confidences.

    Row k is SMPL joint k when there are 24 rows; ``parents`` draws the skeleton.
    """

    xy: torch.Tensor  # (B, K, 2)
    conf: torch.Tensor  # (B, K)
    image_size: tuple[int, int]  # (H, W)
    parents: list[int] = field(default_factory=lambda: list(SMPL_PARENTS))

    def summary(self) -> dict:
        return {"kind": "Keypoints", "batch": int(self.xy.shape[0]), "joints": int(self.xy.shape[1]),
                "image_size": list(self.image_size), "visible": int((self.conf > 0).sum()),
                "device": str(self.xy.device)}


# ----------------------------------------------------------------------------------------- model files


def _as_array(name: str, value: Any) -> np.ndarray:
    """Plain numpy from what a model file holds: arrays, chumpy leaves, scipy sparse matrices."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
        value = value.item()  # what np.savez makes of one object (a sparse regressor, a chumpy array)
    if isinstance(value, _Stub):
        return value.to_array(name)
    return np.asarray(value)


def read_arrays(path: Path, allow_pickle: bool) -> dict[str, Any]:
    """The named arrays of a model file. ``.npz`` never runs pickle unless ``allow_pickle``; ``.pkl`` needs it."""
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        if not allow_pickle:
            raise BodyFileError("allow_pickle", f"{path.name} is a pickle file, and unpickling can run code "
                                                "hidden in the file; refused. Convert it to .npz, or tick "
                                                "allow_pickle if you trust this file")
        with open(path, "rb") as fh:
            data = restricted_load(fh)
        if not isinstance(data, dict):
            raise BodyFileError("file", f"{path.name} does not hold a dict of SMPL arrays "
                                        f"(got {type(data).__name__})")
        return data
    if suffix != ".npz":
        raise BodyFileError("file", f"{path.name}: a body model is an .npz (or, with allow_pickle, a .pkl)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BodyFileError("file", f"{path.name} is not a readable .npz: {exc}") from None
    out: dict[str, Any] = {}
    with npz:
        for key in npz.files:
            try:
                out[key] = npz[key]
            except ValueError:  # an object array: stored with pickle inside the npz
                if key not in REQUIRED:
                    continue
                if not allow_pickle:
                    raise BodyFileError("allow_pickle", f"{path.name}: array {key!r} is stored as pickled "
                                                        "objects, and unpickling can run code; refused. Tick "
                                                        "allow_pickle if you trust this file") from None
                out[key] = _npz_object_array(path, key)
    return out


def _npz_object_array(path: Path, key: str) -> Any:
    """An object array inside an npz, through the restricted unpickler and numpy's public format API only
    (numpy 2.4 removed the private version check this once called)."""
    with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise BodyFileError("file", f"{path.name}: array {key!r} has .npy format version {version}, "
                                        "which this numpy does not read")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        read_header(fh)
        return restricted_load(io.BytesIO(fh.read()))


class _Stub:
    """Stands in for a class we refuse to import (chumpy, scipy.sparse): keeps the pickled state only."""

    state: dict = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[1] or state[0]
        self.state = state if isinstance(state, dict) else {"value": state}

    def to_array(self, name: str) -> np.ndarray:
        raise NotImplementedError


class _Chumpy(_Stub):
    def to_array(self, name):
        x = self.state.get("x")
        if x is None:
            raise BodyFileError("file", f"array {name!r} is a chumpy expression, not plain data; convert the "
                                        "model file to .npz with chumpy installed")
        return _as_array(name, x)


class _Sparse(_Stub):
    layout = "csc"

    def to_array(self, name):
        st = self.state
        shape = tuple(int(s) for s in st.get("_shape", st.get("shape", ())))
        if len(shape) != 2:
            raise BodyFileError("file", f"array {name!r}: unreadable sparse matrix")
        dense = np.zeros(shape)
        data = np.asarray(st["data"], dtype=np.float64)
        if self.layout == "coo":
            np.add.at(dense, (np.asarray(st["row"]), np.asarray(st["col"])), data)
            return dense
        indices, indptr = np.asarray(st["indices"]), np.asarray(st["indptr"])
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if self.layout == "csc":
            np.add.at(dense, (indices, major), data)
        else:
            np.add.at(dense, (major, indices), data)
        return dense


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"), ("__builtin__", "set"), ("builtins", "set"),
    ("__builtin__", "frozenset"), ("builtins", "frozenset"),
    ("_codecs", "encode"),  # how protocol 2 stores bytes (array data) from Python 3
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only. chumpy and scipy.sparse objects become inert stubs
    holding their data; any other global (os.system, builtins.eval, ...) is refused before it is looked up."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            if module.startswith("numpy.core."):
                module = "numpy._core." + module[len("numpy.core."):]
            if module in ("copy_reg", "__builtin__"):
                module = {"copy_reg": "copyreg", "__builtin__": "builtins"}[module]
            return super().find_class(module, name)
        if module.split(".")[0] == "chumpy":
            return _Chumpy
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            return type(name, (_Sparse,), {"layout": name[:3]})
        raise pickle.UnpicklingError(f"the file asks to load {module}.{name}, which a model file never needs; "
                                     "refused (it could run code)")


def restricted_load(fh: Any) -> Any:
    try:
        return RestrictedUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise BodyFileError("file", f"unsafe or unreadable pickle: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise BodyFileError("file", f"unreadable pickle: {type(exc).__name__}: {exc}") from None


def _text(value: Any) -> str | None:
    try:
        arr = np.asarray(value)
        if arr.dtype.kind in "US" and arr.size == 1:
            text = arr.reshape(()).item()
            return text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # an optional field we cannot read is simply absent
        pass
    return value if isinstance(value, str) else None


def check_arrays(data: dict[str, Any], name: str) -> dict[str, np.ndarray]:
    """The SMPL arrays as plain numpy, every shape checked against the others (BodyFileError('file', ...) if
    not); ``kintree_table`` comes back as int64 with the root's parent -1, ``f`` as int64."""
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise BodyFileError("file", f"{name} lacks {missing}; an SMPL model file holds {list(REQUIRED)}")
    a = {k: _as_array(k, data[k]) for k in REQUIRED}

    def bad(key: str, expected: str) -> BodyFileError:
        return BodyFileError("file", f"{name}: array {key!r} has shape {list(a[key].shape)}, expected {expected}")

    for key in REQUIRED:
        if a[key].dtype.kind not in "fiu":
            raise BodyFileError("file", f"{name}: array {key!r} is not numeric (dtype {a[key].dtype})")
    vt = a["v_template"]
    if vt.ndim != 2 or vt.shape[1] != 3 or vt.shape[0] < 3:
        raise bad("v_template", "(V, 3)")
    V = vt.shape[0]
    kt = a["kintree_table"]
    if kt.ndim != 2 or kt.shape[0] != 2 or kt.shape[1] < 24:
        raise bad("kintree_table", "(2, J) with J >= 24 (SMPL has 24 joints)")
    J = kt.shape[1]
    checks = {"shapedirs": (a["shapedirs"].ndim == 3 and a["shapedirs"].shape[:2] == (V, 3), f"({V}, 3, NB)"),
              "posedirs": (a["posedirs"].shape == (V, 3, 9 * (J - 1)), f"({V}, 3, {9 * (J - 1)}) = (V, 3, 9 x "
                                                                      f"{J - 1} joint rotations)"),
              "J_regressor": (a["J_regressor"].shape == (J, V), f"({J}, {V}) = (joints, vertices)"),
              "weights": (a["weights"].shape == (V, J), f"({V}, {J}) = (vertices, joints)"),
              "f": (a["f"].ndim == 2 and a["f"].shape[1] == 3 and a["f"].shape[0] > 0, "(F, 3)")}
    for key, (ok, expected) in checks.items():
        if not ok:
            raise bad(key, expected)
    parents = kt[0].astype(np.int64)
    parents[0] = -1
    if any(not 0 <= parents[i] < i for i in range(1, J)) or list(kt[1]) != list(range(J)):
        raise BodyFileError("file", f"{name}: kintree_table must list joints in order, each after its parent; "
                                    f"got parents {parents.tolist()}")
    faces = a["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= V:
        raise BodyFileError("file", f"{name}: faces 'f' index vertices outside 0..{V - 1}")
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.isfinite(a[key]).all():
            raise BodyFileError("file", f"{name}: array {key!r} holds NaN or inf")
    a["kintree_table"] = np.stack([parents, np.arange(J)])
    a["f"] = faces
    return a


def load_body_model(path: Path, allow_pickle: bool, device: torch.device | str = "cpu") -> BodyModel:
    data = read_arrays(path, allow_pickle)
    a = check_arrays(data, path.name)
    V, J = a["v_template"].shape[0], a["J_regressor"].shape[0]

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=device)

    names = data.get("joint_names")
    names = [str(n) for n in np.asarray(names).tolist()] if names is not None and len(names) == J else \
        list(SMPL_JOINT_NAMES) + [f"joint_{k}" for k in range(24, J)]
    return BodyModel(
        v_template=t(a["v_template"]), shapedirs=t(a["shapedirs"]),
        posedirs=t(a["posedirs"].reshape(V * 3, -1).T), J_regressor=t(a["J_regressor"]),
        parents=torch.as_tensor(a["kintree_table"][0], device=device), weights=t(a["weights"]),
        faces=torch.as_tensor(a["f"], device=device), gender=_text(data.get("gender")),
        joint_names=names, description=_text(data.get("description")) or "", source=path.name)


# ---------------------------------------------------------------------------------------------- forward


def smpl_forward(model: BodyModel, params: BodyParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed vertices (B, V, 3) and joints (B, J, 3): smplx's LBS on the model's arrays, then translation."""
    B = params.batch
    betas, body_pose, orient, transl = (x.expand(B, -1) if x.shape[0] == 1 else x for x in
                                        (params.betas, params.body_pose, params.global_orient, params.transl))
    nb = betas.shape[1]
    shapedirs = model.shapedirs if nb == model.num_betas else model.shapedirs[..., :nb]
    parts = [orient, body_pose]
    extra = model.num_joints - 1 - NUM_BODY_JOINTS
    if extra:  # models with more joints (hands): keep the extra joints at rest
        parts.append(body_pose.new_zeros(B, 3 * extra))
    pose = torch.cat(parts, dim=1)
    verts, joints = lbs(betas, pose, model.v_template, shapedirs, model.posedirs, model.J_regressor,
                        model.parents, model.weights)
    t = transl[:, None, :]
    return verts + t, joints + t


def body_meshes(model: BodyModel, verts: torch.Tensor, textures: Any = None) -> Meshes:
    """``Meshes(verts, model faces)`` without re-checking the model's faces on every call.

    The Meshes constructor scans the (B, F, 3) faces for padding each time, which costs as much as the skinning
    itself for a batch of 64 on a CPU. The faces of a body model never change, so one checked Meshes per batch
    size is kept on the model and each call gets a shallow copy of it holding the new vertices, exactly what
    ``Meshes.update_padded`` produces, minus the scan. (Tested against the plain constructor.)
    """
    B = verts.shape[0]
    templates = model.__dict__.setdefault("_mesh_templates", {})
    key = (B, verts.device)
    template = templates.get(key)
    if template is None:
        if len(templates) > 4:
            templates.clear()
        template = templates[key] = Meshes(verts=verts.detach(), faces=model.faces.expand(B, -1, -1))
    mesh = copy.copy(template)
    mesh.__dict__.update(_verts_padded=verts, _verts_list=None, _verts_packed=None, textures=textures)
    return mesh


# --------------------------------------------------------------------------------------------- priors


def angle_prior(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify's prior against elbows and knees bending the unnatural way: exp(+-angle)^2, per body."""
    idx = torch.tensor([52, 55, 9, 12], device=body_pose.device)  # left/right elbow y, left/right knee x
    signs = torch.tensor([1.0, -1.0, -1.0, -1.0], device=body_pose.device, dtype=body_pose.dtype)
    return torch.exp(body_pose[:, idx] * signs).pow(2).sum(dim=1)


@dataclass
class GMM:
    means: torch.Tensor  # (K, D)
    precisions: torch.Tensor  # (K, D, D)
    log_norm: torch.Tensor  # (K,): -log(weight) + 0.5 log det(cov)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """SMPLify's max-mixture negative log-likelihood, per body (constants dropped)."""
        diff = x[:, None, :] - self.means[None]  # (B, K, D)
        maha = torch.einsum("bki,kij,bkj->bk", diff, self.precisions, diff)
        return (0.5 * maha + self.log_norm[None]).min(dim=1).values


def load_gmm(path: Path, allow_pickle: bool, device: torch.device | str) -> GMM:
    data = read_arrays(path, allow_pickle) if path.suffix.lower() == ".pkl" else None
    if data is None:
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise BodyFileError("file", f"{path.name} is not a readable .npz: {exc}") from None
    missing = [k for k in ("means", "covars", "weights") if k not in data]
    if missing:
        raise BodyFileError("file", f"{path.name} lacks {missing}; a pose GMM holds means (K, 69), "
                                    "covars (K, 69, 69) and weights (K,)")
    means, covars, weights = (np.asarray(_as_array(k, data[k]), dtype=np.float64)
                              for k in ("means", "covars", "weights"))
    K = means.shape[0] if means.ndim == 2 else -1
    if means.shape != (K, 69) or covars.shape != (K, 69, 69) or weights.shape != (K,):
        raise BodyFileError("file", f"{path.name}: means {list(means.shape)}, covars {list(covars.shape)}, "
                                    f"weights {list(weights.shape)}; expected (K, 69), (K, 69, 69), (K,)")
    sign, logdet = np.linalg.slogdet(covars)
    if (sign <= 0).any() or (weights <= 0).any():
        raise BodyFileError("file", f"{path.name}: covariances must be positive definite, weights positive")
    prec = np.linalg.inv(covars)
    log_norm = -np.log(weights) + 0.5 * logdet
    f = lambda x: torch.as_tensor(x, dtype=torch.float32, device=device)  # noqa: E731
    return GMM(f(means), f(prec), f(log_norm))


# ------------------------------------------------------------------------------------------- keypoints


def keypoints_from_array(arr: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(B, 24, 2) xy and (B, 24) confidences from (K, 2|3) or (B, K, 2|3); K = 24 SMPL or 25 BODY_25."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] not in (2, 3) or arr.shape[0] < 1:
        raise BodyFileError("file", f"{what}: keypoints must be (K, 2|3) or (B, K, 2|3) numbers (x, y[, "
                                    f"confidence]), got shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise BodyFileError("file", f"{what}: keypoints hold NaN or inf")
    conf = arr[..., 2] if arr.shape[2] == 3 else np.ones(arr.shape[:2])
    xy = arr[..., :2]
    K = arr.shape[1]
    if K == 24:
        return xy, conf
    if K == 25:
        out_xy, out_conf = np.zeros((arr.shape[0], 24, 2)), np.zeros((arr.shape[0], 24))
        for src, dst in BODY25_TO_SMPL.items():
            out_xy[:, dst], out_conf[:, dst] = xy[:, src], conf[:, src]
        return out_xy, out_conf
    raise BodyFileError("file", f"{what}: {K} keypoints per body; expected 24 (SMPL joint order) or 25 "
                                "(OpenPose BODY_25)")


def read_keypoints(path: Path, person: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """Keypoints from our JSON, an OpenPose JSON, or an .npy array; image size when the file gives one."""
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BodyFileError("file", f"{path.name} is not a readable .npy array: {exc}") from None
        return (*keypoints_from_array(arr, path.name), None)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BodyFileError("file", f"{path.name} is not readable JSON: {exc}") from None
    size = None
    if isinstance(doc, dict) and "people" in doc:  # OpenPose
        people = doc["people"]
        if not isinstance(people, list) or not people:
            raise BodyFileError("file", f"{path.name}: OpenPose file with no people")
        if person >= len(people):
            raise BodyFileError("person", f"{path.name} has {len(people)} people; person {person} does not exist")
        flat = np.asarray(people[person].get("pose_keypoints_2d", []), dtype=np.float64)
        if flat.size % 3 or flat.size // 3 != 25:
            raise BodyFileError("file", f"{path.name}: pose_keypoints_2d has {flat.size} numbers; expected 75 "
                                        "(BODY_25 model)")
        arr = flat.reshape(25, 3)
    elif isinstance(doc, dict):
        if "keypoints" not in doc:
            raise BodyFileError("file", f"{path.name}: expected a 'keypoints' list (or an OpenPose 'people' list)")
        arr = doc["keypoints"]
        if "image_size" in doc:
            hw = doc["image_size"]
            if not (isinstance(hw, list) and len(hw) == 2 and all(isinstance(v, int) and v > 0 for v in hw)):
                raise BodyFileError("file", f"{path.name}: image_size must be [height, width], got {hw!r}")
            size = (hw[0], hw[1])
    else:
        arr = doc
    try:
        arr = np.asarray(arr, dtype=np.float64)
    except (ValueError, TypeError):
        raise BodyFileError("file", f"{path.name}: keypoints are not a rectangular list of numbers") from None
    return (*keypoints_from_array(arr, path.name), size)


def keypoints_json(kp: Keypoints) -> dict:
    data = torch.cat([kp.xy, kp.conf[..., None]], dim=-1).detach().cpu().double().numpy().round(3)
    return {"format": "nodegraph-keypoints/1", "layout": "smpl24" if kp.xy.shape[1] == 24 else "custom",
            "image_size": list(kp.image_size), "joint_names": SMPL_JOINT_NAMES[:kp.xy.shape[1]],
            "keypoints": data.tolist()}


# ------------------------------------------------------------------------------------------- drawing

_LEFT = {i for i, n in enumerate(SMPL_JOINT_NAMES) if n.startswith("left_")}
_RIGHT = {i for i, n in enumerate(SMPL_JOINT_NAMES) if n.startswith("right_")}


def _paint(out: torch.Tensor, b: int, a: torch.Tensor, c: torch.Tensor, radius: float, rgb: torch.Tensor) -> None:
    """Blend an anti-aliased capsule (segment a-c, pixel coordinates) into out[b], touching only its box."""
    H, W = out.shape[1:3]
    lo = torch.minimum(a, c) - radius - 1
    hi = torch.maximum(a, c) + radius + 1
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]) + 1, W), min(int(hi[1]) + 1, H)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = torch.meshgrid(torch.arange(y0, y1, device=out.device) + 0.5,
                            torch.arange(x0, x1, device=out.device) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys], dim=-1)
    ac = c - a
    t = (((pix - a) * ac).sum(-1) / (ac * ac).sum().clamp_min(1e-9)).clamp(0, 1)
    dist = (pix - (a + t[..., None] * ac)).norm(dim=-1)
    alpha = (radius + 0.5 - dist).clamp(0, 1)[..., None]
    region = out[b, y0:y1, x0:x1]
    out[b, y0:y1, x0:x1] = region * (1 - alpha) + rgb * alpha


def draw_skeleton(images: torch.Tensor, kp: Keypoints, color: torch.Tensor, thickness: float) -> torch.Tensor:
    """Anti-aliased bones and joint dots over (B, H, W, 3) images (keypoints rescaled to the image size).

    Left-side bones in ``color``, right-side bones darker, the spine in between; joints with confidence 0 and
    the bones touching them are skipped. Each bone touches only the pixels of its bounding box.
    """
    B = max(images.shape[0], kp.xy.shape[0])
    out = images.expand(B, -1, -1, -1).clone() if images.shape[0] == 1 else images.clone()
    H, W = out.shape[1:3]
    # keypoints are read on the host: each bone's pixel box comes from int() of its ends, which on a GPU would
    # be a device sync per bone; each end is moved to the image's device when it is painted
    scale = torch.tensor([W / kp.image_size[1], H / kp.image_size[0]], device="cpu")
    xy = kp.xy.detach().float().cpu() * scale
    conf = kp.conf.detach().cpu()
    xy = xy.expand(B, -1, -1) if xy.shape[0] == 1 else xy
    conf = conf.expand(B, -1) if conf.shape[0] == 1 else conf
    color = color.to(out.device, out.dtype)
    dot = 0.5 + 0.5 * color
    K = xy.shape[1]
    for b in range(B):
        ok = (conf[b] > 0) & torch.isfinite(xy[b]).all(-1)
        for child, parent in enumerate(kp.parents[:K]):
            if parent < 0 or parent >= K or not (ok[child] and ok[parent]):
                continue
            shade = 1.0 if child in _LEFT else 0.55 if child in _RIGHT else 0.8
            _paint(out, b, xy[b, parent].to(out.device), xy[b, child].to(out.device), thickness / 2, color * shade)
        for k in range(K):
            if ok[k]:
                _paint(out, b, xy[b, k].to(out.device), xy[b, k].to(out.device), thickness * 0.8, dot)
    return out
