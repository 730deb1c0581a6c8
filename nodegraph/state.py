"""Learnable state: the tensors and modules that training updates, kept for the life of a loaded graph.

A learnable node asks its context for ``ctx.param(name, init)`` or ``ctx.module(name, factory)``; the first
call creates the tensor, later calls (every iteration, every run) return the same one. Each node's state has
a ``version`` token that goes into cache keys, so whatever reads a learnable recomputes once it has changed.
Trainers snapshot the state when they finish, so a cached stage can hand its result to the next stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

INIT = "init"


@dataclass
class LearnableState:
    tensors: dict[str, nn.Parameter] = field(default_factory=dict)
    modules: dict[str, nn.Module] = field(default_factory=dict)
    version: str = INIT
    init_key: str | None = None
    pending: dict[str, object] = field(default_factory=dict)  # restored values waiting for first creation

    def reset(self) -> None:
        self.tensors.clear()
        self.modules.clear()
        self.pending.clear()
        self.version = INIT

    def parameters(self, names: set[str] | None = None) -> list[nn.Parameter]:
        out = [p for n, p in self.tensors.items() if names is None or n in names]
        for n, m in self.modules.items():
            if names is None or n in names:
                out += list(m.parameters())
        return out

    def set_trainable(self, names: set[str] | None) -> None:
        for n, p in self.tensors.items():
            p.requires_grad_(names is None or n in names)
        for n, m in self.modules.items():
            m.requires_grad_(names is None or n in names)

    def snapshot(self) -> dict:
        snap = {("t", n): p.detach().clone() for n, p in self.tensors.items()}
        snap.update({("m", n): {k: v.detach().clone() for k, v in m.state_dict().items()}
                     for n, m in self.modules.items()})
        return snap

    def restore(self, snap: dict, version: str) -> None:
        self.tensors.clear()
        self.pending.clear()
        for (kind, name), value in snap.items():
            if kind == "t":
                self.tensors[name] = nn.Parameter(value.clone())
            elif name in self.modules:
                self.modules[name].load_state_dict(value)
            else:
                self.pending[name] = value
        self.version = version

    def param(self, name: str, init: Callable[[], torch.Tensor]) -> nn.Parameter:
        if name not in self.tensors:
            self.tensors[name] = nn.Parameter(init().detach().clone())
        return self.tensors[name]

    def module(self, name: str, factory: Callable[[], nn.Module]) -> nn.Module:
        if name not in self.modules:
            module = factory()
            if name in self.pending:
                module.load_state_dict(self.pending.pop(name))
            self.modules[name] = module
        return self.modules[name]


class StateStore(dict):
    """``{node_id: LearnableState}``, created on first use."""

    def __missing__(self, node_id: str) -> LearnableState:
        state = self[node_id] = LearnableState()
        return state
