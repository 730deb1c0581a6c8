"""SMPL body nodes: load a body model, pose and shape it, project its joints, and fit it to 2D keypoints.

The model math lives in :mod:`nodegraph.nodes._smpl`; skinning is ``smplx.lbs.lbs``. Official SMPL files cannot be
shipped, so the default model is the generated stand-in in ``graphs/assets/standin_body`` (same file layout).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pytorch3d.renderer import TexturesVertex

from nodegraph.errors import NodeError
from nodegraph.spec import Bool, Choice, Color, File, Float, Floats, Input, Int, Output, Text, Vec3, node
from nodegraph.values import LossValue

from . import _smpl
from ._files import check_archive
from ._smpl import BodyFileError, BodyParams, Keypoints

STANDIN = "assets/standin_body/standin_body.npz"
POSE_SIZE = 3 * _smpl.NUM_BODY_JOINTS


def _file(ctx, field: str, value: str) -> Path:
    try:
        path = ctx.asset(value)
    except NodeError as exc:
        ctx.fail(field, exc.problem.message)
    if path.suffix.lower() in (".npz", ".npy"):
        check_archive(ctx, field, path, repr(value))  # refused before numpy inflates it
    return path


# ------------------------------------------------------------------------------------------ export forms


def npz_body_model(path: Path, device) -> _smpl.BodyModel:
    """``load_body_model`` for a plain .npz (nothing pickled), without the file checks LoadBodyModel made:
    the same tensors (scripts call it)."""
    with np.load(path, allow_pickle=False) as npz:
        a = {k: np.asarray(npz[k]) for k in _smpl.REQUIRED}
    V = a["v_template"].shape[0]
    parents = a["kintree_table"][0].astype(np.int64)
    parents[0] = -1

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=device)

    return _smpl.BodyModel(
        v_template=t(a["v_template"]), shapedirs=t(a["shapedirs"]), posedirs=t(a["posedirs"].reshape(V * 3, -1).T),
        J_regressor=t(a["J_regressor"]), parents=torch.as_tensor(parents, device=device), weights=t(a["weights"]),
        faces=torch.as_tensor(a["f"].astype(np.int64), device=device), source=path.name)


def _load_model_export(x) -> str:
    if Path(x.fixed("file")).suffix.lower() != ".npz" or x.values["allow_pickle"]:
        x.fail("only .npz body models (nothing pickled) are exported", "file")
    x.skip("allow_pickle")
    model = x.out()
    x.line(f"{model} = {x.helper(npz_body_model)}(Path({x.path('file')}), device)",
           f"if {x.params['gender']} != 'any':",
           f"    {model}.gender = {x.params['gender']}")
    x.imports("from pathlib import Path")
    return model


def _forward_export(x) -> dict:
    x.imports("from pytorch3d.renderer import TexturesVertex")
    verts, joints = x.name("verts"), x.name("joints")
    model = x.inputs["model"]
    x.line(f"{verts}, {joints} = {x.helper(_smpl.smpl_forward)}({model}, {x.inputs['params']})")
    tex = f"TexturesVertex(torch.tensor({x.params['color']}, device={verts}.device).expand(*{verts}.shape[:2], 3))"
    return {"mesh": f"{x.helper(_smpl.body_meshes)}({model}, {verts}, {tex})", "joints": f"{joints}[:, :24]"}


def _call(fn, *names: str):
    """An export form that calls ``fn`` (copied) on the named inputs and params, in order."""
    def form(x) -> str:
        args = [str(x.inputs[n]) if n in x.inputs else x.params[n] for n in names]
        return f"{x.helper(fn)}({', '.join(args)})"
    return form


def _call_term(fn, *names: str):
    def form(x):
        args = [str(x.inputs[n]) if n in x.inputs else x.params[n] for n in names]
        return x.term(f"{x.helper(fn)}({', '.join(args)})", x.params["weight"])
    return form


def _joint_error_export(x) -> dict:
    err = x.name("errors")
    x.line(f"{err} = {x.helper(joint_error)}({x.inputs['joints']}, {x.inputs['reference']}, {x.inputs['mesh']})")
    return {"error": f"{err}['error']", "relative": f"{err}['relative']"}


def _load_keypoints_export(x) -> str:
    x.imports("from pathlib import Path")
    p, xy, conf, size = x.params, x.name("xy"), x.name("conf"), x.name("size")
    x.line(f"{xy}, {conf}, {size} = {x.helper(_smpl.read_keypoints)}(Path({x.path('file')}), {p['person']})")
    f = "torch.as_tensor({}, dtype=torch.float32, device=device)"
    return (f"{x.helper(Keypoints)}(xy={f.format(xy)}, conf={f.format(conf)}, image_size={size} or "
            f"({p['image_size']}, {p['image_width']} or {p['image_size']}))")


def _save_keypoints_export(x) -> None:
    """The JSON LoadKeypoints reads, written as the node writes it."""
    x.imports("import json")
    x.line(f"with open({x.output_path(x.params['filename'])}, 'w') as f:",
           f"    f.write(json.dumps({x.helper(_smpl.keypoints_json)}({x.inputs['keypoints']})))")


def _pose_prior_export(x):
    if x.fixed("file") is not None:
        x.fail("a pose GMM file is not exported yet; clear `file` for the quadratic prior", "file")
    x.skip("allow_pickle")
    return x.term(f"{x.inputs['params']}.body_pose.pow(2).sum(dim=1).mean()", x.params["weight"])


# ------------------------------------------------------------------------------------------ model


@node(
    category="body",
    params=[
        File("file", STANDIN, "an SMPL-layout model: .npz with v_template, shapedirs, posedirs, J_regressor, "
                              "weights, kintree_table, f (or the original .pkl, with allow_pickle)",
             extensions=(".npz", ".pkl")),
        Choice("gender", "any", "check that the file is this gender's model (when the file records one)",
               choices=("any", "neutral", "female", "male")),
        Bool("allow_pickle", False, "allow reading a .pkl model (pickle can run code hidden in a file: tick only "
                                    "for a file you trust)"),
    ],
    outputs=[Output("model", "BodyModel", "the model's arrays on the run's device")],
    export=lambda x: _load_model_export(x),
)
def LoadBodyModel(ctx, file, gender, allow_pickle):
    """Load an SMPL-layout body model from a file you name.

    The official SMPL files cannot be shipped with nodegraph: download them from the SMPL site and point
    ``file`` at one (a neutral, female or male model). The default is the project's generated *stand-in* body,
    which has SMPL's 24 joints, kinematic tree and file layout but is a mannequin, not SMPL.

    An ``.npz`` is read as plain arrays; nothing in it is executed. The original SMPL ``.pkl`` files are
    Python pickles, and unpickling can run code hidden in a file, so a ``.pkl`` is refused unless you tick
    ``allow_pickle`` for a file you trust; even then only numpy arrays (and chumpy / scipy.sparse data, kept
    as plain numbers) are read, any other object in the pickle stops the load. Converting the ``.pkl`` to
    ``.npz`` once is the safer habit. ``gender`` checks the file's recorded gender, when it has one.
    """
    path = _file(ctx, "file", file)
    try:
        model = _smpl.load_body_model(path, allow_pickle, ctx.device)
    except BodyFileError as exc:
        ctx.fail(exc.field, str(exc))
    if gender != "any" and model.gender is not None and model.gender.lower() != gender:
        ctx.fail("gender", f"{path.name} is the {model.gender} model, not {gender}; pick the {gender} file or "
                           "set gender to any")
    if gender != "any":
        model.gender = gender
    return model


# ------------------------------------------------------------------------------------------ params


def _parse_pose_by_joint(text: str) -> dict[int, list[float]]:
    """``left_elbow: 0 -1.2 0`` lines (or ``;``-separated) -> {joint index: axis-angle}. Raises ValueError."""
    out: dict[int, list[float]] = {}
    for item in text.replace(";", "\n").splitlines():
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        name, _, numbers = item.partition(":")
        name = name.strip()
        if name not in _smpl.SMPL_JOINT_NAMES[1:]:
            raise ValueError(f"unknown joint {name!r}; use one of {_smpl.SMPL_JOINT_NAMES[1:]} (the root is "
                             "global_orient)")
        try:
            values = [float(v) for v in numbers.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 3:
            raise ValueError(f"{name}: give three axis-angle numbers in radians, like '{name}: 0 0 0.5'")
        out[_smpl.SMPL_JOINT_NAMES.index(name)] = values
    return out


def _params_checks(p: dict) -> list[tuple[str, str]]:
    problems = []
    if len(p["betas"]) > p["num_betas"]:
        problems.append(("betas", f"has {len(p['betas'])} values but num_betas is {p['num_betas']}"))
    if len(p["body_pose"]) not in (0, POSE_SIZE):
        problems.append(("body_pose", f"must have {POSE_SIZE} numbers (23 joints x 3, axis-angle in radians) or "
                                      f"none for the rest pose, got {len(p['body_pose'])}"))
    try:
        _parse_pose_by_joint(p["pose_by_joint"])
    except ValueError as exc:
        problems.append(("pose_by_joint", str(exc)))
    return problems


_PARAM_SPECS = [
    Int("batch", 1, "how many bodies (each starts from these values)", min=1, max=4096),
    Int("num_betas", 10, "how many shape coefficients to use (at most the model's)", min=0, max=400),
    Floats("betas", [], "shape coefficients (missing ones are 0)"),
    Floats("body_pose", [], "body pose: 69 numbers = 23 joints x axis-angle (radians), in SMPL joint order "
                            "after the pelvis; empty = rest pose"),
    Text("pose_by_joint", "", "rotations by joint name, one per line, e.g. 'left_elbow: 0 -1.2 0' (overrides "
                              "body_pose for those joints)", multiline=True),
    Vec3("global_orient", (0.0, 0.0, 0.0), "root rotation, axis-angle (radians)"),
    Vec3("transl", (0.0, 0.0, 0.0), "translation"),
]
_MODEL_INPUT = Input("model", "BodyModel", "optional: checks num_betas against the model's shape directions",
                     optional=True)
_PARAMS_OUTPUT = Output("params", "BodyParams", "betas (B, NB), body_pose (B, 69), global_orient (B, 3), "
                                                "transl (B, 3)")


def _initial(ctx, model, batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl) -> dict:
    """Factories for the four parameter tensors, from the node's params."""
    if model is not None and num_betas > model.num_betas:
        ctx.fail("num_betas", f"is {num_betas} but the body model ({model.source}) has only {model.num_betas} "
                              "shape directions")
    dev = ctx.device

    def init_betas():
        b = torch.zeros(batch, num_betas, device=dev)
        b[:, :len(betas)] = torch.tensor(betas, device=dev)
        return b

    def init_pose():
        pose = torch.tensor(body_pose, device=dev) if body_pose else torch.zeros(POSE_SIZE, device=dev)
        pose = pose.reshape(_smpl.NUM_BODY_JOINTS, 3)
        for joint, values in _parse_pose_by_joint(pose_by_joint).items():
            pose[joint - 1] = torch.tensor(values, device=dev)
        return pose.reshape(1, POSE_SIZE).repeat(batch, 1)

    return {"betas": init_betas, "body_pose": init_pose,
            "global_orient": lambda: torch.tensor([global_orient], device=dev).repeat(batch, 1),
            "transl": lambda: torch.tensor([transl], device=dev).repeat(batch, 1)}


def initial_params(batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl, device) -> dict:
    """The four parameter tensors from the node's params (what ``_initial``'s factories make; scripts call it)."""
    b = torch.zeros(batch, num_betas, device=device)
    b[:, :len(betas)] = torch.tensor(betas, device=device)
    pose = torch.tensor(body_pose, device=device) if body_pose else torch.zeros(POSE_SIZE, device=device)
    pose = pose.reshape(_smpl.NUM_BODY_JOINTS, 3)
    for joint, values in _parse_pose_by_joint(pose_by_joint).items():
        pose[joint - 1] = torch.tensor(values, device=device)
    return {"betas": b, "body_pose": pose.reshape(1, POSE_SIZE).repeat(batch, 1),
            "global_orient": torch.tensor([global_orient], device=device).repeat(batch, 1),
            "transl": torch.tensor([transl], device=device).repeat(batch, 1)}


_INIT_ARGS = ("batch", "num_betas", "betas", "body_pose", "pose_by_joint", "global_orient", "transl")


def _initial_call(x) -> str:
    return f"{x.helper(initial_params)}({', '.join(x.params[n] for n in _INIT_ARGS)}, device)"


def _params_export(x) -> str:
    tensors = {name: x.param(name, f"{_initial_call(x)}[{name!r}]")
               for name in ("betas", "body_pose", "global_orient", "transl")}
    return f"{x.helper(BodyParams)}({', '.join(f'{k}={v}' for k, v in tensors.items())})"


@node(category="body", learnable=True, inputs=[_MODEL_INPUT], params=_PARAM_SPECS, outputs=[_PARAMS_OUTPUT],
      checks=_params_checks, export=_params_export)
def SMPLParams(ctx, model, batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl):
    """Learnable SMPL parameters: shape (betas), body pose, global orientation and translation.

    The params are the *initial* values; an ``Optimize`` downstream trains the tensors ``betas``,
    ``body_pose``, ``global_orient`` and ``transl`` (name them as ``<node id>.body_pose`` in its ``train``
    param to fit in stages, e.g. orientation and translation first). Editing a param restarts from it.
    For a body that is only posed, never trained, use SMPLParamsFixed: it is computed once and cached.
    """
    init = _initial(ctx, model, batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl)
    return BodyParams(**{name: ctx.param(name, factory) for name, factory in init.items()})


@node(category="body", inputs=[_MODEL_INPUT], params=_PARAM_SPECS, outputs=[_PARAMS_OUTPUT],
      checks=_params_checks, export=lambda x: f"{x.helper(BodyParams)}(**{_initial_call(x)})")
def SMPLParamsFixed(ctx, model, batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl):
    """Fixed SMPL parameters (shape, body pose, global orientation, translation) that no training changes:
    a chosen pose to render, or the known truth a fit is compared with. Same params as SMPLParams; being
    constant, it and what it feeds are computed once, even inside a training loop."""
    init = _initial(ctx, model, batch, num_betas, betas, body_pose, pose_by_joint, global_orient, transl)
    return BodyParams(**{name: factory() for name, factory in init.items()})


# ------------------------------------------------------------------------------------------ forward


def _check_params(ctx, model, params: BodyParams) -> None:
    nb = params.betas.shape[-1]
    if params.betas.dim() != 2 or nb > model.num_betas:
        ctx.fail("params", f"betas has {nb} values but the body model ({model.source}) has only "
                           f"{model.num_betas} shape directions; lower num_betas to {model.num_betas}")
    if params.body_pose.dim() != 2 or params.body_pose.shape[1] != POSE_SIZE:
        ctx.fail("params", f"body_pose must be (B, {POSE_SIZE}) = 23 joints x 3 axis-angle, got "
                           f"{list(params.body_pose.shape)}")
    for name in ("global_orient", "transl"):
        t = getattr(params, name)
        if t.dim() != 2 or t.shape[1] != 3:
            ctx.fail("params", f"{name} must be (B, 3), got {list(t.shape)}")
    sizes = {t.shape[0] for t in (params.betas, params.body_pose, params.global_orient, params.transl)} - {1}
    if len(sizes) > 1:
        ctx.fail("params", f"batch sizes disagree: {sorted(sizes)}")


@node(
    category="body",
    inputs=[Input("model", "BodyModel"), Input("params", "BodyParams")],
    params=[Color("color", (0.85, 0.66, 0.55), "vertex colour of the mesh (for the shaders)")],
    outputs=[Output("mesh", "Meshes", "the posed bodies, one mesh per batch item"),
             Output("joints", "Tensor", "the 24 SMPL joints (B, 24, 3)")],
    export=lambda x: _forward_export(x),
)
def SMPLForward(ctx, model, params, color):
    """Pose and shape the body: SMPL's shape blend shapes, pose correctives from the 23 joint rotations,
    joints regressed from the shaped template, the kinematic tree and linear blend skinning
    (``smplx.lbs.lbs``), then the translation. Differentiable in every parameter."""
    _check_params(ctx, model, params)
    verts, joints = _smpl.smpl_forward(model, params)
    B, V = verts.shape[:2]
    tex = TexturesVertex(torch.tensor(color, device=verts.device).expand(B, V, 3))
    return {"mesh": _smpl.body_meshes(model, verts, tex), "joints": joints[:, :24]}


# ------------------------------------------------------------------------------------------ keypoints


def _image_size(image_size: int, image_width: int | None) -> tuple[int, int]:
    return (image_size, image_width or image_size)


@node(
    category="body",
    inputs=[Input("cameras", "Cameras"), Input("joints", "Tensor", "(B, J, 3) points, e.g. SMPLForward.joints")],
    params=[Int("image_size", 256, "image height in pixels (and width unless image_width is set)", min=1,
                max=8192),
            Int("image_width", None, "image width in pixels when not square", min=1, max=8192, optional=True)],
    outputs=[Output("keypoints", "Keypoints", "pixel coordinates (x right, y down), confidence 1")],
    export=lambda x: _call(project_joints, 'cameras', 'joints', 'image_size', 'image_width')(x),
)
def ProjectJoints(ctx, cameras, joints, image_size, image_width):
    """Project 3D joints through any PyTorch3D camera into pixel coordinates of an image of the given size
    (the same pixels the rasterizer renders). A batch of cameras with one body gives one view per camera."""
    if joints.dim() != 3 or joints.shape[-1] != 3:
        ctx.fail("joints", f"expected (B, J, 3) points, got {list(joints.shape)}")
    n_cam, n_body = len(cameras), joints.shape[0]
    if n_cam != n_body and 1 not in (n_cam, n_body):
        ctx.fail("cameras", f"{n_cam} cameras for {n_body} bodies; use one camera, one body, or as many of each")
    return project_joints(cameras, joints, image_size, image_width)


def project_joints(cameras, joints: torch.Tensor, image_size: int, image_width: int | None) -> Keypoints:
    """ProjectJoints without its checks: pixel coordinates and confidences (in front of the camera)."""
    n_cam, n_body = len(cameras), joints.shape[0]
    if n_body == 1 and n_cam > 1:
        joints = joints.expand(n_cam, -1, -1)
    hw = (image_size, image_width or image_size)
    screen = cameras.transform_points_screen(joints, image_size=(hw,) * n_cam)
    xy = screen[..., :2]
    depth = cameras.get_world_to_view_transform().transform_points(joints)[..., 2]
    conf = (depth > 0).to(xy.dtype)
    return Keypoints(xy=xy, conf=conf, image_size=hw)


@node(
    category="body",
    params=[File("file", None, "JSON ({'keypoints': [[x, y, conf], ...], 'image_size': [H, W]} or an OpenPose "
                               "file) or .npy (K, 2|3)", extensions=(".json", ".npy")),
            Int("image_size", 256, "image height when the file does not say", min=1, max=8192),
            Int("image_width", None, "image width when not square and the file does not say", min=1, max=8192,
                optional=True),
            Int("person", 0, "which person of an OpenPose file", min=0)],
    outputs=[Output("keypoints", "Keypoints", "24 SMPL joints in pixels with confidences")],
    export=lambda x: _load_keypoints_export(x),
)
def LoadKeypoints(ctx, file, image_size, image_width, person):
    """2D keypoints from a file: 24 rows in SMPL joint order, or OpenPose BODY_25 (mapped onto the SMPL joints
    it shares: neck, shoulders, elbows, wrists, hips, knees, ankles; the rest get confidence 0). A third column
    is the confidence (0 = missing); without it every joint counts fully."""
    path = _file(ctx, "file", file)
    try:
        xy, conf, size = _smpl.read_keypoints(path, person)
    except BodyFileError as exc:
        ctx.fail(exc.field, str(exc))
    if (conf < 0).any():
        ctx.fail("file", f"{path.name}: confidences must be >= 0")
    f = lambda a: torch.as_tensor(a, dtype=torch.float32, device=ctx.device)  # noqa: E731
    return Keypoints(xy=f(xy), conf=f(conf), image_size=size or _image_size(image_size, image_width))


@node(
    category="body",
    inputs=[Input("keypoints", "Keypoints")],
    params=[File("filename", "keypoints.json", "JSON file in the run's output folder", extensions=(".json",),
                 must_exist=False)],
    export=lambda x: _save_keypoints_export(x),
)
def SaveKeypoints(ctx, keypoints, filename):
    """Write keypoints as JSON (the format LoadKeypoints reads: x, y, confidence per joint, image size)."""
    path = ctx.output_path(filename)
    path.write_text(json.dumps(_smpl.keypoints_json(keypoints)))


@node(
    category="body",
    preview=True,
    inputs=[Input("keypoints", "Keypoints"),
            Input("image", "Images", "drawn over (keypoints are rescaled to its size); else a plain background",
                  optional=True),
            Input("reference", "Keypoints", "optional second skeleton (e.g. the target), drawn first and wider, "
                                            "so it shows as a rim where the two agree", optional=True)],
    params=[Color("color", (0.1, 0.9, 0.2), "bones of `keypoints` (right side darker)"),
            Color("reference_color", (0.95, 0.15, 0.15), "bones of `reference`"),
            Float("thickness", 3.0, "line width in pixels", min=0.5, max=50.0),
            Color("background", (0.0, 0.0, 0.0), "background when no image is connected")],
    outputs=[Output("image", "Images", "(B, H, W, 3)")],
    export=lambda x: f"{x.helper(draw_skeletons)}({x.helper(skeleton_base)}({x.inputs['keypoints']}, {x.inputs['image']}, {x.params['background']}), {x.inputs['keypoints']}, {x.inputs['reference']}, {x.params['color']}, {x.params['reference_color']}, {x.params['thickness']})",
)
def DrawSkeleton(ctx, keypoints, image, reference, color, reference_color, thickness, background):
    """Draw 2D keypoints as a skeleton (bones along SMPL's kinematic tree) over an image, for checking a fit
    by eye; a second skeleton (``reference``) can be drawn underneath. Shown in the node as it runs, and live
    during training."""
    dev = keypoints.xy.device
    if image is None:
        h, w = keypoints.image_size
        base = torch.tensor(background, device=dev).expand(1, h, w, 3)
    else:
        if image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
            ctx.fail("image", f"expected (B, H, W, C) images, got {list(image.shape)}")
        base = image[..., :3].detach().to(dev) if image.shape[-1] != 1 else image.detach().to(dev).expand(
            -1, -1, -1, 3)
    batches = {base.shape[0], keypoints.xy.shape[0]} | ({reference.xy.shape[0]} if reference else set())
    if len(batches - {1}) > 1:
        ctx.fail("keypoints", f"batch sizes disagree: {sorted(batches)}")
    out = draw_skeletons(base, keypoints, reference, color, reference_color, thickness)
    ctx.preview_image(out)
    return out


def skeleton_base(keypoints: Keypoints, image, background) -> torch.Tensor:
    """What DrawSkeleton draws on: the image as RGB, or a plain background of the keypoints' image size."""
    dev = keypoints.xy.device
    if image is None:
        h, w = keypoints.image_size
        return torch.tensor(background, device=dev).expand(1, h, w, 3)
    return image[..., :3].detach().to(dev) if image.shape[-1] != 1 else image.detach().to(dev).expand(-1, -1, -1, 3)


def draw_skeletons(base: torch.Tensor, keypoints: Keypoints, reference, color, reference_color,
                   thickness: float) -> torch.Tensor:
    """The reference skeleton (wider), then the keypoints' skeleton, over ``base`` (DrawSkeleton, unchecked)."""
    dev = keypoints.xy.device
    with torch.no_grad():
        out = base
        if reference is not None:
            out = _smpl.draw_skeleton(out, reference, torch.tensor(reference_color, device=dev), thickness * 2)
        out = _smpl.draw_skeleton(out, keypoints, torch.tensor(color, device=dev), thickness)
    return out


# ------------------------------------------------------------------------------------------ evaluation


@node(
    category="body",
    inputs=[Input("joints", "Tensor", "(B, J, 3) estimated joints"),
            Input("reference", "Tensor", "(B, J, 3) true joints"),
            Input("mesh", "Meshes", "the true body, for its height (else the joints' vertical extent)",
                  optional=True)],
    outputs=[Output("error", "Scalar", "mean per-joint position error, model units (metres for SMPL)"),
             Output("relative", "Scalar", "that error as a fraction of the body height")],
    export=lambda x: _joint_error_export(x),
)
def JointError(ctx, joints, reference, mesh):
    """Mean per-joint position error (MPJPE) between estimated and true 3D joints, also relative to the body
    height (vertical extent of the reference mesh)."""
    if joints.shape[-1] != 3 or joints.shape[-2:] != reference.shape[-2:]:
        ctx.fail("reference", f"shape {list(reference.shape)} does not match joints {list(joints.shape)}")
    return joint_error(joints, reference, mesh)


def joint_error(joints: torch.Tensor, reference: torch.Tensor, mesh) -> dict:
    """MPJPE and MPJPE / height (JointError, unchecked)."""
    with torch.no_grad():
        error = float((joints - reference).norm(dim=-1).mean())
        pts = mesh.verts_padded() if mesh is not None else reference
        height = float((pts[..., 1].amax(dim=-1) - pts[..., 1].amin(dim=-1)).mean())
    return {"error": error, "relative": error / height}


# ------------------------------------------------------------------------------------------ SMPLify terms


@node(
    category="body",
    inputs=[Input("keypoints", "Keypoints", "projected model joints (ProjectJoints)"),
            Input("target", "Keypoints", "detected / given 2D joints with confidences")],
    params=[Float("sigma", 100.0, "Geman-McClure scale in pixels: residuals well above it count less", min=1e-3),
            Choice("joints", "all", "all joints, or the torso only (hips and shoulders: SMPLify's first stage)",
                   choices=("all", "torso")),
            Float("weight", 1.0, "weight of this term", min=0.0)],
    outputs=[Output("loss", "Loss")],
    export=lambda x: _call_term(smplify_joint_term, 'keypoints', 'target', 'sigma', 'joints')(x),
)
def SMPLifyJointLoss(ctx, keypoints, target, sigma, joints, weight):
    """SMPLify's data term: confidence-weighted robust (Geman-McClure) distance between projected model joints
    and target 2D joints, summed over joints and coordinates, in pixels^2, averaged over the batch."""
    pred, tgt = keypoints.xy, target.xy.to(keypoints.xy.device)
    if pred.shape[1] != tgt.shape[1]:
        ctx.fail("target", f"{tgt.shape[1]} target joints for {pred.shape[1]} model joints")
    if pred.shape[0] != tgt.shape[0] and 1 not in (pred.shape[0], tgt.shape[0]):
        ctx.fail("target", f"batch {tgt.shape[0]} does not match {pred.shape[0]}")
    return LossValue.term(ctx.node_id, smplify_joint_term(keypoints, target, sigma, joints), weight)


def smplify_joint_term(keypoints: Keypoints, target: Keypoints, sigma: float, joints: str) -> torch.Tensor:
    """SMPLify's robust data term, unweighted (SMPLifyJointLoss, unchecked)."""
    pred, tgt = keypoints.xy, target.xy.to(keypoints.xy.device)
    if tuple(target.image_size) != tuple(keypoints.image_size):
        scale = torch.tensor([keypoints.image_size[1] / target.image_size[1],
                              keypoints.image_size[0] / target.image_size[0]], device=pred.device)
        tgt = tgt * scale
    conf = target.conf.to(pred.device)
    if joints == "torso":
        mask = torch.zeros(pred.shape[1], device=pred.device)
        mask[[j for j in _smpl.TORSO_JOINTS if j < pred.shape[1]]] = 1
        conf = conf * mask
    sq = (pred - tgt) ** 2
    robust = sigma ** 2 * sq / (sigma ** 2 + sq)
    return (conf[..., None] * robust).sum(dim=(1, 2)).mean()


_GMM_CACHE: dict = {}


@node(
    category="body",
    inputs=[Input("params", "BodyParams")],
    params=[File("file", None, "a pose GMM (.npz with means (K, 69), covars (K, 69, 69), weights (K,); or "
                               "SMPLify's .pkl with allow_pickle); empty: a quadratic prior",
                 extensions=(".npz", ".pkl"), optional=True),
            Bool("allow_pickle", False, "allow reading a .pkl GMM (pickle can run code: only files you trust)"),
            Float("weight", 1.0, "weight of this term", min=0.0)],
    outputs=[Output("loss", "Loss")],
    export=lambda x: _pose_prior_export(x),
)
def SMPLifyPosePrior(ctx, params, file, allow_pickle, weight):
    """SMPLify's pose prior on the 69 body-pose numbers: the negative log-likelihood under a Gaussian mixture
    learned from real poses when you give its file (SMPLify's gmm_08), else a quadratic prior ||pose||^2 that
    pulls towards the rest pose. Averaged over the batch."""
    pose = params.body_pose
    if file is None:
        return LossValue.term(ctx.node_id, pose.pow(2).sum(dim=1).mean(), weight)
    path = _file(ctx, "file", file)
    key = (str(path), path.stat().st_mtime_ns, str(pose.device), allow_pickle)
    if key not in _GMM_CACHE:
        try:
            _GMM_CACHE.clear()
            _GMM_CACHE[key] = _smpl.load_gmm(path, allow_pickle, pose.device)
        except BodyFileError as exc:
            ctx.fail(exc.field, str(exc))
    return LossValue.term(ctx.node_id, _GMM_CACHE[key].nll(pose).mean(), weight)


@node(
    category="body",
    inputs=[Input("params", "BodyParams")],
    params=[Float("weight", 1.0, "weight of this term", min=0.0)],
    outputs=[Output("loss", "Loss")],
    export=lambda x: x.term(f"{x.helper(_smpl.angle_prior)}({x.inputs['params']}.body_pose).mean()", x.params['weight']),
)
def SMPLifyAnglePrior(ctx, params, weight):
    """SMPLify's angle prior: exp(angle)^2 on the bend of elbows and knees, so they bend the natural way
    (a knee does not bend forwards). Averaged over the batch."""
    return LossValue.term(ctx.node_id, _smpl.angle_prior(params.body_pose).mean(), weight)


@node(
    category="body",
    inputs=[Input("params", "BodyParams")],
    params=[Float("weight", 1.0, "weight of this term", min=0.0)],
    outputs=[Output("loss", "Loss")],
    export=lambda x: x.term(f"{x.inputs['params']}.betas.pow(2).sum(dim=1).mean()", x.params['weight']),
)
def SMPLifyShapePrior(ctx, params, weight):
    """SMPLify's shape prior ||betas||^2: keeps the body shape near the mean shape. Averaged over the batch."""
    return LossValue.term(ctx.node_id, params.betas.pow(2).sum(dim=1).mean(), weight)

