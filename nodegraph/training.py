"""Training as a node: the loop a trainer node (``Optimize``) drives over its upstream sub-graph.

A trainer goes through the executor's one node lifecycle (key, cache, events, counts, errors) like any node;
this module owns only what is particular to training: where the trained learnables start (:func:`start_state`:
their initial values, or the snapshot a previous stage left), the :class:`TrainingLoop` the trainer receives
as ``ctx.loop`` (with its loss input bound to ``loop.forward``), and what a finished or stopped loop leaves
behind (:func:`finish`, :func:`keep_partial`). The loop computes the static part of the sub-graph once,
re-evaluates dynamic nodes (learnable, stochastic and what depends on them) every iteration, and evaluates
preview taps every few iterations under ``no_grad`` within a time budget.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from nodegraph.errors import NodeError
from nodegraph.ratelimit import RateLimit
from nodegraph.values import LossValue, TrainedToken

if TYPE_CHECKING:
    from nodegraph.executor import Executor


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
        contract = executor.specs[trainer].trainer
        self.loss_sources = [l for _, l in executor.links_into(trainer) if l.dst_port == contract.loss]
        self.static: dict[str, dict] = {}
        for node_id in self.plan.topological:
            if node_id in interior and node_id not in self.plan.dynamic:
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
        for node_id in self.plan.topological:
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

    def release(self) -> None:
        """Drop this iteration's values (activations), e.g. before memory is handed back after out-of-memory."""
        self.memo = {}
        self.static = {}

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - clearer message for node authors
        raise AttributeError(f"TrainingLoop has no attribute {name!r}")


def start_state(ex: "Executor", trainer: str) -> None:
    """Put each learnable this trainer trains where the trainer starts: its previous stage's end, or init."""
    plan = ex.plan
    for node_id in plan.trains(trainer):
        ex.sync_learnable_init(node_id)
        earlier = [s for s in plan.previous_stages(trainer) if node_id in plan.trains(s)]
        snap = ex.snapshots.get(earlier[-1], {}).get(node_id) if earlier else None
        if snap is not None:
            ex.state[node_id].restore(snap, f"{earlier[-1]}:{ex.cache[earlier[-1]].key}")
        else:
            ex.state[node_id].reset()
    ex.invalidate_keys()


def reuse(ex: "Executor", trainer: str, key: str) -> bool:
    """A cached trainer result is usable when its snapshot is there; then the learnables take it up."""
    if trainer not in ex.snapshots:
        return False
    _hand_over(ex, trainer, key, ex.snapshots[trainer])
    return True


def finish(ex: "Executor", trainer: str, key: str, loop: TrainingLoop, outputs: dict) -> dict:
    """After the trainer returned: its ``done`` token, the snapshot later stages and cached runs start from."""
    done = ex.specs[trainer].trainer.done
    outputs[done] = TrainedToken(trainer, key)
    snap = {n: ex.state[n].snapshot() for n in loop.learnables}
    ex.snapshots[trainer] = snap
    _hand_over(ex, trainer, key, snap)
    return outputs


def keep_partial(ex: "Executor", trainer: str, loop: TrainingLoop) -> None:
    """A stopped loop keeps what it learned so far (readers see it; nothing caches it as finished)."""
    partial = {n: ex.state[n].snapshot() for n in loop.learnables}
    _hand_over(ex, trainer, f"cancelled-{time.time_ns()}", partial)


def _hand_over(ex: "Executor", trainer: str, key: str, snap: dict) -> None:
    for node_id, node_snap in snap.items():
        ex.state[node_id].restore(node_snap, f"{trainer}:{key}")
        ex.state[node_id].set_trainable(None)
    ex.invalidate_keys()
