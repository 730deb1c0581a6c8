"""Loss and learnable nodes, called directly with a real run context: values match PyTorch3D, bad input fails
with an error naming the node and the input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch3d.loss import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from pytorch3d.structures import Pointclouds
from pytorch3d.utils import ico_sphere

import nodegraph
from nodegraph.registry import default_registry
from nodegraph.context import RunContext
from nodegraph.errors import NodeError
from nodegraph.session import Session
from nodegraph.values import LossValue


def call(type_name: str, node_id: str = "n", graph: Session | None = None, **kwargs):
    """Run one node function with its default params and a real executor's context."""
    spec = default_registry().get(type_name)
    graph = graph or nodegraph.new()
    ex = graph.executor
    ex.device = torch.device("cpu")
    args = spec.defaults() | kwargs
    return spec.normalise_result(spec.fn(RunContext(ex, node_id), **args))


def loss_of(type_name: str, **kwargs) -> LossValue:
    return call(type_name, "term", **kwargs)["loss"]


@pytest.fixture
def sphere():
    mesh = ico_sphere(2)
    return mesh.offset_verts(0.05 * torch.randn(mesh.verts_packed().shape, generator=torch.Generator()
                                                .manual_seed(1)))


# ------------------------------------------------------------------------------------------ values


def test_chamfer_matches_pytorch3d_for_clouds_and_tensors():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 100, 3, generator=gen), torch.rand(2, 80, 3, generator=gen)
    want = chamfer_distance(a, b)[0]
    from_tensors = loss_of("ChamferLoss", x=a, y=b, weight=2.0)
    from_clouds = loss_of("ChamferLoss", x=Pointclouds(list(a)), y=Pointclouds(list(b)))
    assert torch.allclose(from_tensors.terms["term"], want)
    assert torch.allclose(from_tensors.total, 2 * want)
    assert torch.allclose(from_clouds.total, want)
    l1 = loss_of("ChamferLoss", x=a, y=b, norm=1).total
    assert torch.allclose(l1, chamfer_distance(a, b, norm=1)[0])


def test_chamfer_handles_ragged_clouds():
    gen = torch.Generator().manual_seed(0)
    x = Pointclouds([torch.rand(50, 3, generator=gen), torch.rand(30, 3, generator=gen)])
    y = Pointclouds([torch.rand(40, 3, generator=gen), torch.rand(60, 3, generator=gen)])
    want = chamfer_distance(x.points_padded(), y.points_padded(), x_lengths=x.num_points_per_cloud(),
                            y_lengths=y.num_points_per_cloud())[0]
    assert torch.allclose(loss_of("ChamferLoss", x=x, y=y).total, want)


def test_mesh_priors_match_pytorch3d(sphere):
    assert torch.allclose(loss_of("MeshEdgeLoss", mesh=sphere).total, mesh_edge_loss(sphere))
    assert torch.allclose(loss_of("MeshEdgeLoss", mesh=sphere, target_length=0.3).total,
                          mesh_edge_loss(sphere, target_length=0.3))
    assert torch.allclose(loss_of("MeshNormalConsistency", mesh=sphere, weight=0.01).total,
                          0.01 * mesh_normal_consistency(sphere))
    for method in ("uniform", "cot", "cotcurv"):
        got = loss_of("MeshLaplacianSmoothing", mesh=sphere, method=method)
        assert torch.allclose(got.total, mesh_laplacian_smoothing(sphere, method=method)), method


def test_image_losses():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 8, 8, 3, generator=gen), torch.rand(2, 8, 8, 3, generator=gen)
    assert torch.allclose(loss_of("MSELoss", input=x, target=y).total, torch.nn.functional.mse_loss(x, y))
    assert torch.allclose(loss_of("L1Loss", input=x, target=y).total, torch.nn.functional.l1_loss(x, y))
    # the tutorials' pseudo-Huber: ~ d^2 / (2 s) for small d, ~ |d| - s for large d
    small, large = torch.tensor([1e-3]), torch.tensor([10.0])
    zero = torch.zeros(1)
    assert loss_of("HuberLoss", input=small, target=zero, scaling=0.1).total.item() == pytest.approx(5e-6, rel=1e-2)
    assert loss_of("HuberLoss", input=large, target=zero, scaling=0.1).total.item() == pytest.approx(9.9, rel=1e-3)


def test_silhouette_loss_uses_alpha_and_reduction():
    pred = torch.zeros(1, 4, 4, 4)
    pred[..., 3] = 1.0
    pred[..., :3] = 0.3  # colour is ignored
    target = torch.zeros(1, 4, 4, 1)
    target[0, :2, :, 0] = 1.0  # half the pixels agree
    assert loss_of("SilhouetteLoss", images=pred, target=target).total.item() == pytest.approx(0.5)
    assert loss_of("SilhouetteLoss", images=pred, target=target, reduction="sum").total.item() == 8.0
    assert loss_of("SilhouetteLoss", images=pred, target=target[..., 0]).total.item() == pytest.approx(0.5)


def test_loss_sum_keeps_terms_and_weights():
    a = LossValue.term("a", torch.tensor(2.0), 0.5)
    b = LossValue.term("b", torch.tensor(3.0), 2.0)
    total = loss_of("LossSum", losses=[a, b], weight=10.0)
    assert total.total.item() == pytest.approx(10 * (1.0 + 6.0))
    assert {k: v.item() for k, v in total.terms.items()} == {"a": 2.0, "b": 3.0}


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("type_name, kwargs, field, words", [
    ("MSELoss", dict(input=torch.zeros(1, 8, 8, 4), target=torch.zeros(1, 8, 8, 3)), "target", "SplitRGBA"),
    ("L1Loss", dict(input=torch.zeros(3), target=torch.zeros(4)), "target", "does not match"),
    ("HuberLoss", dict(input=torch.zeros(3), target=[0, 0, 0]), "target", "expects a tensor"),
    ("SilhouetteLoss", dict(images=torch.zeros(1, 8, 8, 4), target=torch.zeros(1, 16, 16, 4)), "target",
     "do not match"),
    ("SilhouetteLoss", dict(images=torch.zeros(1, 8, 8, 3), target=torch.zeros(1, 8, 8, 4)), "images", "RGBA"),
    ("ChamferLoss", dict(x=torch.zeros(2, 5, 3), y=torch.zeros(3, 5, 3)), "y", "batch"),
    ("ChamferLoss", dict(x=torch.zeros(5, 3), y=torch.zeros(5, 2)), "y", "coordinates"),
    ("ChamferLoss", dict(x=ico_sphere(0), y=torch.zeros(5, 3)), "x", "SamplePoints"),
    ("LossSum", dict(losses=[]), "losses", "at least one"),
])
def test_bad_loss_input_names_node_and_field(type_name, kwargs, field, words):
    with pytest.raises(NodeError) as err:
        call(type_name, "myloss", **kwargs)
    assert err.value.problem.node == "myloss"
    assert err.value.problem.field == field
    assert words in err.value.problem.message


# ------------------------------------------------------------------------------------------ learnable nodes


def test_learnable_nodes_create_state_once_and_keep_it():
    g = nodegraph.new()
    mesh = ico_sphere(1)
    out = call("OffsetVerts", "off", g, mesh=mesh)
    assert torch.equal(out["mesh"].verts_packed(), mesh.verts_packed())
    with torch.no_grad():
        out["offsets"] += 0.5  # what an optimizer step does
    again = call("OffsetVerts", "off", g, mesh=mesh)
    assert again["offsets"] is out["offsets"]
    assert torch.allclose(again["mesh"].verts_packed(), mesh.verts_packed() + 0.5)
    with pytest.raises(NodeError, match="vertices"):
        call("OffsetVerts", "off", g, mesh=ico_sphere(2))

    colored = call("LearnableVertexColors", "col", g, mesh=mesh, color=[0.2, 0.4, 0.6])
    feats = colored["mesh"].textures.verts_features_packed()
    assert feats.shape == (mesh.verts_packed().shape[0], 3)
    assert torch.allclose(feats[0], torch.tensor([0.2, 0.4, 0.6]))
    assert colored["colors"].requires_grad


def test_learnable_camera_looks_at_origin_and_passes_gradients():
    out = call("LearnableCameraPosition", "cam", position=[3.0, 6.9, 2.5])
    cams, pos = out["cameras"], out["position"]
    assert torch.allclose(cams.get_camera_center()[0], torch.tensor([3.0, 6.9, 2.5]), atol=1e-5)
    # the origin projects to the image centre
    centre = cams.transform_points(torch.zeros(1, 1, 3))[0, 0, :2]
    assert torch.allclose(centre, torch.zeros(2), atol=1e-5)
    cams.get_camera_center().sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all()


def test_learnable_tensor_inits_are_seeded():
    assert torch.equal(call("LearnableTensor", shape=[2, 3], value=0.25)["tensor"].detach(), torch.full((2, 3), 0.25))
    a = call("LearnableTensor", shape=[100], init="normal", seed=3)["tensor"].detach()
    b = call("LearnableTensor", shape=[100], init="normal", seed=3)["tensor"].detach()
    c = call("LearnableTensor", shape=[100], init="uniform", value=1.0, scale=0.5, seed=3)["tensor"].detach()
    assert torch.equal(a, b) and a.std() > 0.5
    assert c.min() >= 0.5 and c.max() <= 1.5


def test_save_tensor_writes_pt_and_npy(tmp_path):
    g = nodegraph.new()
    g.executor.out_dir = tmp_path
    value = torch.arange(6.0).reshape(2, 3).requires_grad_()
    call("SaveTensor", "s", g, tensor=value, filename="pos.pt")
    call("SaveTensor", "s", g, tensor=value, filename="sub/pos.npy")
    assert torch.equal(torch.load(tmp_path / "pos.pt"), value.detach())
    assert np.array_equal(np.load(tmp_path / "sub" / "pos.npy"), value.detach().numpy())
