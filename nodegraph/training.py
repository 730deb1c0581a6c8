"""Training as a node: the loop a trainer node (``Optimize``) drives over its upstream sub-graph.

The executor calls :func:`run_trainer` instead of caching the trainer like an ordinary node. It restores the
state the trained learnables must start from (their initial values, or the snapshot a previous stage left),
returns the cached result if nothing upstream changed, else calls the trainer node with a
:class:`TrainingLoop` in ``ctx.loop`` and ``loss`` bound to ``loop.forward``. The loop computes the static part
of the sub-graph once, re-evaluates dynamic nodes (learnable, stochastic and what depends on them) every
iteration, and evaluates preview taps every few iterations under ``no_grad`` within a time budget.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx
import torch

from nodegraph import registry
from nodegraph.context import RunContext
from nodegraph.errors import Cancelled, NodeError
from nodegraph.ratelimit import RateLimit

if TYPE_CHECKING:
    from nodegraph.executor import Executor


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


class TrainingLoop:
    """The sub-graph under a trainer, seen as a differentiable function of its learnable state."""

    preview_budget = 0.03  # the share of the loop's wall time preview taps may take
    preview_hz = 10.0  # preview taps per second, at most, on average

    def __init__(self, executor: "Executor", trainer: str) -> None:
        self.ex = executor
        self.trainer = trainer
        self.plan = executor.plan
        self.learnables = self.plan.trains(trainer)
        self.taps = self.plan.taps(trainer)
        interior = self.plan.interior(trainer)
        self.loss_sources = [l for l in executor.graph.links_into(trainer) if l.dst_port == "loss"]
        self.static: dict[str, dict] = {}
        for node_id in nx.topological_sort(self.plan.dag.subgraph(interior)):
            if node_id not in self.plan.dynamic:
                self.static[node_id] = executor.value(node_id)
        self.history: dict[str, list] = {"total": []}
        self.iteration = 0
        self._tap_rate = RateLimit(self.preview_hz)
        self._tap_seconds = 0.0
        self._started = time.perf_counter()
        self._last_progress = -math.inf
        self.memo: dict[str, dict] = {}

    # ------------------------------------------------------------------ evaluation
    def _pull(self, node_id: str) -> dict:
        if node_id in self.static:
            return self.static[node_id]
        if node_id not in self.plan.dynamic:
            return self.ex.value(node_id)
        if node_id not in self.memo:
            inputs = self.ex.inputs_of(node_id, self._pull)
            self.memo[node_id] = self.ex.call(node_id, inputs, iteration=self.iteration)
        return self.memo[node_id]

    def forward(self, iteration: int) -> LossValue:
        """Evaluate the loss sub-graph once with the current learnable values; record the loss terms."""
        self.ex.check_cancelled()
        self.iteration = iteration
        self.memo = {}
        loss = LossValue.combine([self._pull(l.src)[l.src_port] for l in self.loss_sources])
        if not bool(torch.isfinite(loss.total)):
            raise self._non_finite_error()
        self.history["total"].append(loss.total.detach())
        for name, value in loss.terms.items():
            self.history.setdefault(name, []).append(value)
        return loss

    def parameters(self) -> list[torch.nn.Parameter]:
        """The tensors this loop trains (call after the first ``forward``: learnables create them lazily)."""
        params = []
        for node_id in self.learnables:
            params += self.ex.state[node_id].parameters(self.plan.trained_tensors(self.trainer, node_id))
        return params

    def set_trainable(self) -> None:
        for node_id in self.learnables:
            self.ex.state[node_id].set_trainable(self.plan.trained_tensors(self.trainer, node_id))

    def _non_finite_error(self) -> NodeError:
        for node_id in nx.topological_sort(self.plan.dag):
            for port, value in (self.memo.get(node_id) or self.static.get(node_id) or {}).items():
                tensors = [value] if isinstance(value, torch.Tensor) else \
                    [value.total] if isinstance(value, LossValue) else []
                if hasattr(value, "verts_packed"):
                    tensors = [value.verts_packed()]
                if any(not bool(torch.isfinite(t).all()) for t in tensors):
                    return NodeError(node_id, port, f"produced a non-finite value (NaN or inf) at iteration "
                                                    f"{self.iteration}; lower the learning rate or check inputs")
        return NodeError(self.trainer, "loss", f"the loss became non-finite at iteration {self.iteration}")

    # ------------------------------------------------------------------ progress and previews
    def progress(self, iteration: int, total: int, lr: float | None = None, force: bool = False) -> None:
        """Emit a progress event, at most ten times a second (and always when forced)."""
        now = time.perf_counter()
        if not force and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        losses = {k: float(v[-1]) for k, v in self.history.items() if v}
        self.ex.bus.emit("progress", node=self.trainer, iteration=iteration, total=total,
                         loss=losses.get("total"), losses=losses, lr=lr, elapsed_s=round(now - self._started, 4),
                         preview_s=round(self._tap_seconds, 4))
        self.ex.previews.plot(self.trainer, "history", self.history_floats(), force=force)

    def tap(self, iteration: int) -> None:
        """Evaluate preview taps under no_grad if they fit the time budget; never touches the RNG stream.

        Values already computed this iteration (the render the loss compares) are reused; branches that only
        the previews read are computed now, with the parameters after this iteration's step.
        """
        if not self.taps:
            return
        now = time.perf_counter()
        elapsed = now - self._started
        if self._tap_seconds > self.preview_budget * elapsed or not self._tap_rate.ready(now):
            return
        devices = [self.ex.device] if self.ex.device.type == "cuda" else []
        saved_memo = self.memo
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            self.memo = dict(saved_memo)  # reuse this iteration's values: a tap costs only what is new
            for node_id in self.taps:
                self._pull(node_id)
        self.memo = saved_memo
        self._tap_seconds += time.perf_counter() - now

    def history_floats(self) -> dict[str, list[float]]:
        """The history as floats (tensors recorded since the last call are copied to the host together)."""
        out = {}
        for name, values in self.history.items():
            pending = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
            if pending:
                floats = torch.stack([values[i].float() for i in pending]).cpu().tolist()
                for i, f in zip(pending, floats):
                    values[i] = f
            out[name] = list(values)
        return out

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - clearer message for node authors
        raise AttributeError(f"TrainingLoop has no attribute {name!r}")


def _start_state(ex: "Executor", trainer: str) -> None:
    """Put each learnable this trainer trains where the trainer starts: its previous stage's end, or init."""
    plan = ex.plan
    for node_id in plan.trains(trainer):
        ex._sync_learnable_init(node_id)
        earlier = [s for s in plan.previous_stages(trainer) if node_id in plan.trains(s)]
        snap = ex.snapshots.get(earlier[-1], {}).get(node_id) if earlier else None
        if snap is not None:
            ex.state[node_id].restore(snap, f"{earlier[-1]}:{ex.cache[earlier[-1]].key}")
        else:
            ex.state[node_id].reset()
    ex.invalidate_keys()


def run_trainer(ex: "Executor", trainer: str) -> dict:
    """Run (or reuse) a trainer node; see the module docstring."""
    from nodegraph.executor import CacheEntry, out_of_memory_message, release_gpu_memory  # imports this module

    spec = registry.get(ex.graph.nodes[trainer].type)
    _start_state(ex, trainer)
    key = ex.key(trainer)
    entry = ex.cache.get(trainer)
    if entry is not None and entry.key == key and trainer in ex.snapshots:
        _finish_state(ex, trainer, key, ex.snapshots[trainer])
        ex.report_cached(trainer, entry)
        return entry.outputs
    loop = TrainingLoop(ex, trainer)
    ex.bus.emit("node_started", node=trainer, node_type=spec.name)
    started = time.perf_counter()
    ctx = RunContext(ex, trainer)
    ctx.loop = loop
    other = {}
    for port in spec.inputs:
        if port.name != "loss":
            links = [l for l in ex.graph.links_into(trainer) if l.dst_port == port.name]
            other[port.name] = ex.value(links[0].src)[links[0].src_port] if links else None
    ex.counts[trainer] += 1
    loop.set_trainable()
    oom = None
    try:
        result = spec.fn(ctx, loss=loop.forward, **other, **ex.params(trainer))
    except Cancelled:
        partial = {n: ex.state[n].snapshot() for n in loop.learnables}
        _finish_state(ex, trainer, f"cancelled-{time.time_ns()}", partial)
        raise
    except NodeError:
        raise
    except torch.cuda.OutOfMemoryError as exc:  # in backward() or the optimizer step, outside any node call
        oom = out_of_memory_message(exc)
    except Exception as exc:
        raise ex._error(trainer, f"{type(exc).__name__}: {exc}", traceback.format_exc()) from None
    if oom is not None:
        del loop, ctx  # the iteration's activations and the optimizer's state go with them
        release_gpu_memory()
        raise ex._error(trainer, oom)
    outputs = spec.normalise_result(result)
    if "done" in outputs:
        outputs["done"] = TrainedToken(trainer, key)
    snap = {n: ex.state[n].snapshot() for n in loop.learnables}
    ex.snapshots[trainer] = snap
    seconds = time.perf_counter() - started
    ex.cache[trainer] = CacheEntry(key, outputs, seconds)
    _finish_state(ex, trainer, key, snap)
    ex.report_finished(trainer, outputs, seconds, cached=False)
    return outputs


def _finish_state(ex: "Executor", trainer: str, key: str, snap: dict) -> None:
    for node_id, node_snap in snap.items():
        ex.state[node_id].restore(node_snap, f"{trainer}:{key}")
        ex.state[node_id].set_trainable(None)
    ex.invalidate_keys()
