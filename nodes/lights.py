"""Lights and materials, as PyTorch3D's Phong model uses them (defaults are PyTorch3D's)."""
from __future__ import annotations

from nodegraph.spec import Color, Float, Output, Vec3, node


def _c(value) -> tuple:
    return (tuple(value),)


# The Phong colours PointLights and DirectionalLights share (PyTorch3D's lights share them, with these defaults).
_LIGHT_COLORS = [
    Color("ambient_color", (0.5, 0.5, 0.5), "ambient intensity per channel"),
    Color("diffuse_color", (0.3, 0.3, 0.3), "diffuse intensity per channel"),
    Color("specular_color", (0.2, 0.2, 0.2), "specular intensity per channel"),
]


_COLORS = ("ambient_color={ambient_color}, diffuse_color={diffuse_color}, specular_color={specular_color}")


def _light_export(cls: str, fields: str):
    """``cls(<field>=(tuple(args...),), ..., device=device)``: PyTorch3D takes a batch of one colour/vector."""
    def form(x) -> str:
        x.imports(f"from pytorch3d.renderer import {cls}")
        wrapped = {k: f"(tuple({v}),)" for k, v in x.params.items()}
        wrapped["shininess"] = x.params.get("shininess", "")
        return f"{cls}({fields.format(**wrapped)}, device=device)"
    return form


@node(
    category="lights",
    export=_light_export("PointLights", "location={location}, " + _COLORS),
    params=[Vec3("location", (0.0, 1.0, 0.0), "light position in world coordinates"), *_LIGHT_COLORS],
    outputs=[Output("lights", "Lights")],
)
def PointLights(ctx, location, ambient_color, diffuse_color, specular_color):
    """A point light at ``location``, with ambient, diffuse and specular colours."""
    from pytorch3d.renderer import PointLights as P3D

    return P3D(location=_c(location), ambient_color=_c(ambient_color), diffuse_color=_c(diffuse_color),
               specular_color=_c(specular_color), device=ctx.device)


@node(
    category="lights",
    export=_light_export("DirectionalLights", "direction={direction}, " + _COLORS),
    params=[Vec3("direction", (0.0, 1.0, 0.0), "direction the light comes from (towards the light)"),
            *_LIGHT_COLORS],
    outputs=[Output("lights", "Lights")],
)
def DirectionalLights(ctx, direction, ambient_color, diffuse_color, specular_color):
    """A light infinitely far away along ``direction`` (like the sun)."""
    from pytorch3d.renderer import DirectionalLights as P3D

    if not any(direction):
        ctx.fail("direction", "must not be the zero vector")
    return P3D(direction=_c(direction), ambient_color=_c(ambient_color), diffuse_color=_c(diffuse_color),
               specular_color=_c(specular_color), device=ctx.device)


@node(
    category="lights",
    export=_light_export("AmbientLights", "ambient_color={ambient_color}"),
    params=[Color("ambient_color", (1.0, 1.0, 1.0), "ambient intensity per channel")],
    outputs=[Output("lights", "Lights")],
)
def AmbientLights(ctx, ambient_color):
    """Light from everywhere at once: every surface shows its texture colour times ``ambient_color``."""
    from pytorch3d.renderer import AmbientLights as P3D

    return P3D(ambient_color=_c(ambient_color), device=ctx.device)


@node(
    category="lights",
    export=_light_export("Materials", _COLORS + ", shininess={shininess}"),
    params=[
        Color("ambient_color", (1.0, 1.0, 1.0), "ambient reflectivity"),
        Color("diffuse_color", (1.0, 1.0, 1.0), "diffuse reflectivity"),
        Color("specular_color", (1.0, 1.0, 1.0), "specular reflectivity"),
        Float("shininess", 64.0, "specular exponent", min=0.0, max=10000.0),
    ],
    outputs=[Output("materials", "Materials")],
)
def Materials(ctx, ambient_color, diffuse_color, specular_color, shininess):
    """Surface reflectivity for the Phong model (``pytorch3d.renderer.Materials``)."""
    from pytorch3d.renderer import Materials as P3D

    return P3D(ambient_color=_c(ambient_color), diffuse_color=_c(diffuse_color),
               specular_color=_c(specular_color), shininess=shininess, device=ctx.device)
