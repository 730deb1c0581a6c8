"""Values that travel between nodes and that the engine itself gives meaning to: losses and trained stages.

They live at the bottom of the engine's layers, so node modules, the training loop and the executor all
import them from here without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class LossValue:
    """What a loss node outputs: the weighted scalar to minimise and its named terms for plots.

    ``terms`` maps a term name (the loss node's id) to its unweighted value, detached.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    @staticmethod
    def term(name: str, value: torch.Tensor, weight: float = 1.0) -> "LossValue":
        return LossValue(weight * value, {name: value.detach()})

    @staticmethod
    def combine(losses: list["LossValue"]) -> "LossValue":
        total = sum((l.total for l in losses[1:]), losses[0].total)
        terms: dict[str, torch.Tensor] = {}
        for l in losses:
            terms.update(l.terms)
        return LossValue(total, terms)

    def summary(self) -> dict:
        return {"kind": "Loss", "total": float(self.total.detach()),
                "terms": {k: float(v) for k, v in self.terms.items()}}


@dataclass
class LossHistory:
    """Per-iteration values of the total loss and of each term."""

    series: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"kind": "LossHistory", "iterations": len(self.series.get("total", [])),
                "final": {k: v[-1] for k, v in self.series.items() if v}}


@dataclass(frozen=True)
class TrainedToken:
    """The ``done`` output of a stage: wire it to a later stage's ``after`` input to order the stages."""

    trainer: str
    key: str

    def summary(self) -> dict:
        return {"kind": "Trained", "trainer": self.trainer}
