"""Implicit functions: fields that give a density and a colour at any 3D point, rendered by ``ImplicitRenderer``.

``NeuralRadianceField`` is the NeRF tutorial's learnable MLP (harmonic embedding of points and view directions,
density and colour heads). ``SphereField``, ``BoxField`` and ``TorusField`` are analytic fields built from signed
distances, for rendering an implicit surface with no training at all. ``HarmonicEmbedding`` exposes the
positional encoding on its own.

A field is a callable ``field(ray_bundle=..., **kwargs) -> (densities (..., P, 1), colours (..., P, 3))``; it may
offer ``bytes_per_point(training)`` so renderers can refuse a ray count that would not fit in memory.
"""
from __future__ import annotations

import torch
from pytorch3d.renderer import HarmonicEmbedding as _HarmonicEmbedding
from pytorch3d.renderer import RayBundle, ray_bundle_to_ray_points
from torch import nn

from nodegraph.spec import Bool, Choice, Color, Float, Input, Int, Output, Vec3, node

# ------------------------------------------------------------------------------------------ NeRF


class NeuralRadianceField(nn.Module):
    """The NeRF tutorial's field: an MLP on harmonic embeddings of points, with density and colour heads.

    Densities are ``1 - exp(-softplus(.))`` (an opacity per sample); colours depend on the point's features and
    the embedded, normalised viewing direction.
    """

    def __init__(self, n_harmonic_functions: int = 60, n_hidden_neurons: int = 256, omega0: float = 0.1,
                 density_bias: float = -1.5) -> None:
        super().__init__()
        self.harmonic_embedding = _HarmonicEmbedding(n_harmonic_functions, omega_0=omega0, append_input=False)
        embedding_dim = n_harmonic_functions * 2 * 3
        self.embedding_dim, self.hidden = embedding_dim, n_hidden_neurons
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, n_hidden_neurons), nn.Softplus(beta=10.0),
            nn.Linear(n_hidden_neurons, n_hidden_neurons), nn.Softplus(beta=10.0),
        )
        self.color_layer = nn.Sequential(
            nn.Linear(n_hidden_neurons + embedding_dim, n_hidden_neurons), nn.Softplus(beta=10.0),
            nn.Linear(n_hidden_neurons, 3), nn.Sigmoid(),
        )
        self.density_layer = nn.Sequential(nn.Linear(n_hidden_neurons, 1), nn.Softplus(beta=10.0))
        with torch.no_grad():
            self.density_layer[0].bias[0] = density_bias  # start almost transparent

    def bytes_per_point(self, training: bool) -> int:
        e, h = self.embedding_dim, self.hidden
        return 4 * (3 * e + 8 * h) if training else 4 * (2 * e + 3 * h)

    def forward(self, ray_bundle: RayBundle, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        points = ray_bundle_to_ray_points(ray_bundle)
        features = self.mlp(self.harmonic_embedding(points))
        densities = 1 - (-self.density_layer(features)).exp()
        directions = nn.functional.normalize(ray_bundle.directions, dim=-1)
        dir_embedding = self.harmonic_embedding(directions)[..., None, :].expand(*features.shape[:-1], -1)
        colors = self.color_layer(torch.cat((features, dir_embedding), dim=-1))
        return densities, colors


@node(
    category="implicit",
    learnable=True,
    params=[
        Int("n_harmonic_functions", 60, "frequencies of the positional encoding", min=1, max=128),
        Int("n_hidden_neurons", 256, "width of the MLP", min=1, max=4096),
        Float("omega0", 0.1, "lowest frequency of the encoding", min=1e-6),
        Float("density_bias", -1.5, "initial bias of the density head (negative: start transparent)"),
    ],
    outputs=[Output("function", "ImplicitFunction", "the field; connect to ImplicitRenderer")],
    name="NeuralRadianceField",
    export=lambda x: x.module("field", f"{x.helper(NeuralRadianceField)}({x.params['n_harmonic_functions']}, "
                                       f"{x.params['n_hidden_neurons']}, {x.params['omega0']}, "
                                       f"{x.params['density_bias']})"),
)
def neural_radiance_field(ctx, n_harmonic_functions, n_hidden_neurons, omega0, density_bias):
    """A neural radiance field, the MLP of PyTorch3D's "fit a simple NeRF" tutorial.

    Points along each ray go through a harmonic embedding and a two-layer MLP; a density head gives each sample's
    opacity and a colour head, also fed the embedded viewing direction, its colour. Its weights are learned by
    an ``Optimize`` node; they are created (seeded by Optimize's seed) the first time the field is used.
    """
    return ctx.module("field", lambda: NeuralRadianceField(n_harmonic_functions, n_hidden_neurons, omega0,
                                                           density_bias))


@node(
    category="implicit",
    inputs=[Input("x", "Tensor", "(..., D) coordinates, e.g. ray points")],
    params=[
        Int("n_harmonic_functions", 6, "frequencies per coordinate", min=1, max=128),
        Float("omega0", 1.0, "lowest frequency", min=1e-6),
        Bool("logspace", True, "frequencies omega0 * 2^k (else evenly spaced)"),
        Bool("append_input", True, "append x itself to the embedding"),
    ],
    outputs=[Output("embedding", "Tensor", "(..., D * (2 * n_harmonic_functions + append_input))")],
    export="""
        from pytorch3d.renderer import HarmonicEmbedding
        {out} = HarmonicEmbedding({n_harmonic_functions}, omega_0={omega0}, logspace={logspace},
            append_input={append_input}).to({x}.device)({x})
    """,
)
def HarmonicEmbedding(ctx, x, n_harmonic_functions, omega0, logspace, append_input):
    """NeRF's positional encoding: ``sin`` and ``cos`` of each coordinate at rising frequencies
    (PyTorch3D ``HarmonicEmbedding``). Lets an MLP represent fine detail.
    """
    embed = _HarmonicEmbedding(n_harmonic_functions, omega_0=omega0, logspace=logspace,
                               append_input=append_input).to(x.device)
    return embed(x)


# ------------------------------------------------------------------------------------------ analytic fields


class SDFField(nn.Module):
    """A field from a signed distance: density ``sigmoid(-sharpness * sdf)`` and a flat, normal or shaded colour."""

    def __init__(self, sdf, sharpness: float, color, coloring: str, light_direction,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.sdf, self.sharpness, self.coloring = sdf, sharpness, coloring
        self.register_buffer("color", torch.tensor(color, dtype=torch.float32, device=device))
        light = torch.tensor(light_direction, dtype=torch.float32, device=device)
        self.register_buffer("light", light / light.norm().clamp_min(1e-9))

    def bytes_per_point(self, training: bool) -> int:
        return 4 * 64

    def normals(self, points: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        offsets = torch.eye(3, device=points.device, dtype=points.dtype) * eps
        grad = torch.stack([self.sdf(points + o) - self.sdf(points - o) for o in offsets], dim=-1)
        return nn.functional.normalize(grad, dim=-1)

    def forward(self, ray_bundle: RayBundle, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        points = ray_bundle_to_ray_points(ray_bundle)
        densities = torch.sigmoid(-self.sharpness * self.sdf(points))[..., None]
        if self.coloring == "flat":
            colors = self.color.expand(*points.shape[:-1], 3)
        else:
            n = self.normals(points)
            if self.coloring == "normals":
                colors = 0.5 + 0.5 * n
            else:
                lambert = (n * self.light).sum(-1, keepdim=True).clamp_min(0.0)
                colors = self.color * (0.3 + 0.7 * lambert)
        return densities, colors


# The constants are made on the run's device once: ``.to(p)`` is then a no-op, not a host-to-device copy per call.
def _sphere(center, radius, device):
    c = torch.tensor(center, dtype=torch.float32, device=device)

    def sdf(p):
        return (p - c.to(p)).norm(dim=-1) - radius
    return sdf


def _box(center, size, device):
    c, half = (torch.tensor(center, dtype=torch.float32, device=device),
               torch.tensor(size, dtype=torch.float32, device=device) / 2)

    def sdf(p):
        q = (p - c.to(p)).abs() - half.to(p)
        return q.clamp_min(0).norm(dim=-1) + q.max(dim=-1).values.clamp_max(0)
    return sdf


def _torus(center, major, minor, device):
    c = torch.tensor(center, dtype=torch.float32, device=device)

    def sdf(p):
        q = p - c.to(p)
        ring = torch.stack([q[..., [0, 2]].norm(dim=-1) - major, q[..., 1]], dim=-1)
        return ring.norm(dim=-1) - minor
    return sdf


_LOOK = [
    Float("sharpness", 50.0, "how fast density rises across the surface (1 / width of the shell)", min=1e-3,
          unit="1/world units"),
    Color("color", (0.9, 0.6, 0.2), "base colour"),
    Choice("coloring", "shaded", "flat: the colour; normals: surface normal as RGB; shaded: colour lit by "
                                 "light_direction", choices=("flat", "normals", "shaded")),
    Vec3("light_direction", (0.3, 0.6, -1.0), "direction towards the light (shaded colouring)"),
]
_CENTER = Vec3("center", (0.0, 0.0, 0.0), "world position of the centre")
_FIELD_OUT = [Output("function", "ImplicitFunction", "connect to ImplicitRenderer")]


def _field_export(shape, args: str):
    """An analytic field in a script: ``SDFField`` over the shape's signed distance, both copied."""
    def form(x) -> str:
        p = x.params
        sdf = f"{x.helper(shape)}({args.format(**p)}, device)"
        return (f"{x.helper(SDFField)}({sdf}, {p['sharpness']}, {p['color']}, {p['coloring']}, "
                f"{p['light_direction']}, device)")
    return form


def _light_checks(p: dict) -> list[tuple[str, str]]:
    if p["coloring"] == "shaded" and not any(p["light_direction"]):
        return [("light_direction", "must not be zero for shaded colouring")]
    return []


@node(category="implicit",
      params=[_CENTER, Float("radius", 0.8, "sphere radius", min=1e-6, unit="world units"), *_LOOK],
      outputs=_FIELD_OUT, checks=_light_checks, export=_field_export(_sphere, "{center}, {radius}"))
def SphereField(ctx, center, radius, sharpness, color, coloring, light_direction):
    """An analytic sphere: density from the signed distance ``|p - center| - radius``. Renders without training."""
    return SDFField(_sphere(center, radius, ctx.device), sharpness, color, coloring, light_direction, ctx.device)


@node(category="implicit",
      params=[_CENTER, Vec3("size", (1.0, 1.0, 1.0), "edge lengths", min=1e-6), *_LOOK],
      outputs=_FIELD_OUT, checks=_light_checks, export=_field_export(_box, "{center}, {size}"))
def BoxField(ctx, center, size, sharpness, color, coloring, light_direction):
    """An analytic axis-aligned box of the given edge lengths, from its exact signed distance."""
    return SDFField(_box(center, size, ctx.device), sharpness, color, coloring, light_direction, ctx.device)


def _torus_checks(p: dict) -> list[tuple[str, str]]:
    problems = _light_checks(p)
    if p["minor_radius"] > p["major_radius"]:
        problems.append(("minor_radius", f"must not exceed major_radius ({p['major_radius']})"))
    return problems


@node(category="implicit",
      params=[_CENTER, Float("major_radius", 0.7, "ring radius", min=1e-6, unit="world units"),
              Float("minor_radius", 0.25, "tube radius", min=1e-6, unit="world units"), *_LOOK],
      outputs=_FIELD_OUT, checks=_torus_checks,
      export=_field_export(_torus, "{center}, {major_radius}, {minor_radius}"))
def TorusField(ctx, center, major_radius, minor_radius, sharpness, color, coloring, light_direction):
    """An analytic torus around the y axis (ring of ``major_radius``, tube of ``minor_radius``)."""
    return SDFField(_torus(center, major_radius, minor_radius, ctx.device), sharpness, color, coloring,
                    light_direction, ctx.device)
