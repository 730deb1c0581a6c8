"""Tiny node types for executor tests: they exercise caching and training without rendering anything.

``REGISTRY`` is the node library plus these; tests build their graphs against it (``nodegraph.new(registry=
REGISTRY)``), and the server tests load this module as a plugin (``NODEGRAPH_PLUGINS=toy_nodes``).
"""
import sys

import torch

from nodegraph.spec import Float, Floats, Input, Int, Output, node
from nodegraph.values import LossValue


@node(category="toy", params=[Floats("value", [1.0, 2.0, 3.0])], outputs=[Output("out", "Tensor")])
def ToyConst(ctx, value):
    """A constant tensor."""
    return torch.tensor(value, device=ctx.device)


@node(category="toy", inputs=[Input("x", "Tensor")], params=[Float("factor", 2.0)],
      outputs=[Output("out", "Tensor")])
def ToyScale(ctx, x, factor):
    """x * factor."""
    return x * factor


@node(category="toy", learnable=True, inputs=[Input("like", "Tensor")], params=[Float("init", 0.0)],
      outputs=[Output("out", "Tensor")])
def ToyLearnable(ctx, like, init):
    """A learnable tensor shaped like its input."""
    return ctx.param("w", lambda: torch.full_like(like, init))


@node(category="toy", stochastic=True, inputs=[Input("x", "Tensor")], params=[Float("sigma", 0.01)],
      outputs=[Output("out", "Tensor")])
def ToyNoise(ctx, x, sigma):
    """x plus Gaussian noise."""
    return x + sigma * torch.randn_like(x)


@node(category="toy", inputs=[Input("a", "Tensor"), Input("b", "Tensor")], params=[Float("weight", 1.0)],
      outputs=[Output("loss", "Loss")])
def ToyMSE(ctx, a, b, weight):
    """Mean squared error."""
    if a.shape != b.shape:
        ctx.fail("b", f"shape {list(b.shape)} does not match a {list(a.shape)}")
    return LossValue.term(ctx.node_id, ((a - b) ** 2).mean(), weight)


@node(category="toy", preview=True, inputs=[Input("x", "Any")])
def ToyPreview(ctx, x):
    """Records what it sees."""
    SEEN.append((ctx.iteration, x.detach().clone() if isinstance(x, torch.Tensor) else x))


SEEN: list = []


@node(category="toy", inputs=[Input("x", "Tensor", optional=True)], params=[Float("seconds", 1.0)],
      outputs=[Output("out", "Tensor")])
def ToyWait(ctx, x, seconds):
    """Waits ``seconds`` in small steps, checking for Stop between them (a cooperative long node)."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)
    return torch.zeros(1, device=ctx.device) if x is None else x


@node(category="toy", inputs=[Input("x", "Tensor", optional=True)], params=[Int("how", 0)],
      outputs=[Output("out", "Tensor")])
def ToyCrash(ctx, x, how):
    """Takes its process down: 0 os.abort() (SIGABRT), 1 reads address 0 (SIGSEGV)."""
    import ctypes
    import os
    if how == 0:
        os.abort()
    ctypes.string_at(0)


def registry_with(*modules):
    """The library, these toy nodes and the nodes of ``modules`` (a test file's own), in a private registry."""
    from nodegraph.registry import default_registry

    return default_registry().with_modules(sys.modules[__name__], *modules)


REGISTRY = registry_with()
