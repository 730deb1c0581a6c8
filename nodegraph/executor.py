"""The executor: runs a prepared graph in topological order, caching each node's latest outputs.

Every node, trainers included, goes through one lifecycle (:meth:`Executor.value`): its cache key, a cache
hit or a call, ``node_started``/``node_finished`` events, an execution count, and errors (out-of-memory
included) mapped to a :class:`~nodegraph.errors.NodeError` naming the node. A node's key is a hash of its
type, its params (and the files they name), the keys of its inputs, and, for a learnable node, the version of
its state. After an edit only the edited node and what depends on it get a new key, so only they run again.
The cache holds one entry per node (the latest), so memory stays flat however many times a graph is edited
and re-run. A trainer's particulars (where its learnables start, the loop it drives, what it leaves behind)
live in :mod:`nodegraph.training`.

An executor is long-lived: a :class:`~nodegraph.session.Session` (or the editor's worker process) keeps one
and hands it the current graph on every run, so cache and learned state carry over between runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nodegraph import paths, training
from nodegraph.context import RunContext
from nodegraph.errors import Cancelled, GraphError, NodeError, Problem
from nodegraph.events import EventBus
from nodegraph.graph import Graph, Link
from nodegraph.prepare import Prepared, prepare
from nodegraph.previews import PreviewSink
from nodegraph.registry import Registry, default_registry
from nodegraph.spec import File, NodeSpec
from nodegraph.state import StateStore
from nodegraph.training import TrainingLoop
from nodegraph.types import summarize


@dataclass
class CacheEntry:
    key: str
    outputs: dict
    seconds: float


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device a run uses. A CUDA device always carries its index (``cuda`` becomes ``cuda:0``, the current
    device), as the tensors made on it report theirs: ``run()`` then ``run(device="cuda:0")`` is one device and
    keeps the cache and what was learned, and ``tensor.device == ctx.device`` holds inside nodes."""
    dev = default_device() if device is None or device == "auto" else torch.device(device)
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise GraphError([Problem(None, "device", "CUDA was asked for but no CUDA device is available; "
                                                  "use --device cpu")])
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise GraphError([Problem(None, "device", f"{dev} was asked for but this machine has {count} CUDA "
                                                  f"device(s): cuda:0..cuda:{count - 1}")])
    return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())


class Executor:
    """Runs graphs, again and again, reusing unchanged results and learned state between runs."""

    def __init__(self, registry: Registry | None = None, bus: EventBus | None = None) -> None:
        self.registry = registry or default_registry()
        self.bus = bus or EventBus()
        self.cache: dict[str, CacheEntry] = {}
        self.state = StateStore()
        self.snapshots: dict[str, dict] = {}  # trainer id -> {learnable id: state snapshot}
        self.counts: Counter[str] = Counter()  # executions per node id, for tests and the manifest
        self.device = default_device()
        self.previews = PreviewSink(self.bus.emit)
        self.auto_preview = False  # show every Images output as it is produced (the editor turns this on)
        # The run in progress (set by run()): what was prepared, where files go, what was written.
        self.prepared: Prepared | None = None
        self.out_dir: Path = paths.default_out_dir("untitled")
        self.files_written: dict[str, list[str]] = {}  # node id -> paths, this run
        self._keys: dict[str, str] = {}
        self._structure_keys: dict[str, str] = {}  # learned state never changes these: kept for the whole run
        self._own_parts: dict[str, list] = {}  # type, params and file stamps per node: read once per run
        self._reported: set[str] = set()  # nodes whose node_finished this run has already announced
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # one run at a time
        self.running = False

    # ------------------------------------------------------------------ the run
    def cancel(self) -> None:
        """Ask the running graph to stop at the next node or iteration boundary."""
        self._cancel.set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def run(self, graph: Graph | Prepared, device: str | torch.device | None = None,
            targets: list[str] | None = None, out_dir: str | Path | None = None) -> dict[str, dict]:
        """Run ``graph`` (or just ``targets`` and what they need); return ``{node_id: {output: value}}``.

        ``graph`` may come already prepared (``prepare(graph, registry, targets)``), so a caller that showed
        the problems first does not check it twice. Raises GraphError (every problem, before anything runs),
        NodeError (a node failed; the events say which) or Cancelled. Files go to ``out_dir``, by default
        ``paths.default_out_dir(graph.name)``.
        """
        prepared = graph if isinstance(graph, Prepared) else prepare(graph, self.registry, targets)
        prepared.raise_problems()
        graph = prepared.graph
        if targets and prepared.flat is not None:
            targets = prepared.flat.expand_targets(targets)  # a group instance stands for its inner nodes
        dev = resolve_device(device)
        with self._lock:
            self.running = True
            self._cancel.clear()
            try:
                return self._run(prepared, dev, targets, Path(out_dir) if out_dir else
                                 paths.default_out_dir(graph.name))
            finally:
                self.running = False

    def _run(self, prepared: Prepared, device: torch.device, targets: list[str] | None, out_dir: Path) -> dict:
        if device != self.device:
            self.cache.clear()
            self.state.clear()
            self.snapshots.clear()
            self.device = device
        self.prepared, self.out_dir = prepared, out_dir
        self._drop_stale_entries()
        self._keys.clear()
        self._structure_keys.clear()
        self._own_parts.clear()
        self._reported.clear()
        self.files_written = {}
        order = self.plan.order(targets)
        run_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        flat = prepared.flat
        skipped = {"bypassed": flat.bypassed, "muted": flat.muted} if flat and (flat.bypassed or flat.muted) else {}
        self.bus.emit("run_started", run_id=run_id, graph=self.graph.name, device=str(device), order=order,
                      seed=self.graph.seed, out_dir=str(out_dir), **skipped)
        results: dict[str, dict] = {}
        try:
            for node_id in order:
                self.check_cancelled()
                if self.plan.loop_only(node_id):
                    continue
                results[node_id] = self.value(node_id)
            self.previews.flush()
        except (Cancelled, KeyboardInterrupt) as exc:  # Stop, or Ctrl+C in the terminal or notebook
            self.previews.flush()
            self.bus.emit("run_finished", run_id=run_id, status="cancelled",
                          seconds=time.perf_counter() - started)
            if isinstance(exc, KeyboardInterrupt):
                raise Cancelled() from None
            raise
        except NodeError as exc:
            self.previews.flush()
            self.bus.emit("node_error", **exc.problem.to_json(), traceback=getattr(exc, "traceback", ""))
            self.bus.emit("run_finished", run_id=run_id, status="error", seconds=time.perf_counter() - started,
                          error=exc.problem.to_json())
            raise
        self.bus.emit("run_finished", run_id=run_id, status="ok", seconds=time.perf_counter() - started)
        wanted = set(order)
        return {n: entry.outputs for n, entry in self.cache.items() if n in wanted} | results

    def _drop_stale_entries(self) -> None:
        for node_id in list(self.cache):
            if node_id not in self.graph.nodes:
                del self.cache[node_id]
        for node_id in list(self.state):
            if node_id not in self.graph.nodes:
                del self.state[node_id]

    # ------------------------------------------------------------------ the prepared graph
    @property
    def graph(self) -> Graph:
        return self.prepared.graph

    @property
    def plan(self):
        return self.prepared.plan

    @property
    def specs(self) -> dict[str, NodeSpec]:
        return self.prepared.specs

    @property
    def base_dir(self) -> Path:
        return self.graph.base_dir

    def params(self, node_id: str) -> dict:
        return self.prepared.params[node_id]

    def links_into(self, node_id: str) -> list[tuple[int, Link]]:
        """``(link index, link)`` for every link into the node, in file order."""
        return self.prepared.inputs.get(node_id, [])

    # ------------------------------------------------------------------ keys
    def invalidate_keys(self) -> None:
        """Learnable versions changed: every key that depends on them must be recomputed."""
        self._keys.clear()

    def key(self, node_id: str) -> str:
        if node_id in self._keys:
            return self._keys[node_id]
        spec = self.specs[node_id]
        parts = self._own_key_parts(node_id)
        parts.append(sorted((l.dst_port, i, self.key(l.src), l.src_port) for i, l in self.links_into(node_id)))
        if spec.learnable:
            parts.append(self.state[node_id].version)
        if spec.stochastic:
            parts.append(self.graph.seed)
        if spec.trainer is not None:
            parts.append([self.state[n].version for n in self.plan.trains(node_id)])
        self._keys[node_id] = _digest(parts)
        return self._keys[node_id]

    def _own_key_parts(self, node_id: str) -> list[Any]:
        """The node's type, params and the files they name: its part of every key (and of its structure key),
        so the files are looked at once per run, however often keys are recomputed."""
        if node_id not in self._own_parts:
            spec = self.specs[node_id]
            params = self.params(node_id)
            parts: list[Any] = [spec.name, params]
            for param in spec.params:
                value = params.get(param.name)
                if isinstance(param, File) and param.must_exist and value:
                    parts.append([value, _file_stamps(Path(self.graph.base_dir, value))])
            self._own_parts[node_id] = parts
        return list(self._own_parts[node_id])

    def structure_key(self, node_id: str) -> str:
        """Like :meth:`key` but blind to learned state: types, params, files and links of the node and its
        ancestors. A learnable node's initial value depends on this, so training a learnable node upstream
        (e.g. vertex offsets feeding vertex colours) never resets it. Computed once per run, however many
        readers pull the learnable node."""
        if node_id not in self._structure_keys:
            parts = self._own_key_parts(node_id)
            parts.append(sorted((l.dst_port, i, self.structure_key(l.src), l.src_port)
                                for i, l in self.links_into(node_id)))
            self._structure_keys[node_id] = _digest(parts)
        return self._structure_keys[node_id]

    def sync_learnable_init(self, node_id: str) -> None:
        """A learnable node whose params or inputs changed starts again from its initial value."""
        spec_key = self.structure_key(node_id)
        st = self.state[node_id]
        if st.init_key != spec_key:
            st.reset()
            st.init_key = spec_key
            self.invalidate_keys()

    # ------------------------------------------------------------------ the node lifecycle
    def inputs_of(self, node_id: str, pull: Callable[[str], dict], loop: TrainingLoop | None = None) -> dict:
        """Gather a node's inputs by pulling its sources with ``pull`` (cached or per-iteration). A trainer's
        loss input is its loop's ``forward``."""
        spec = self.specs[node_id]
        loss_port = spec.trainer.loss if loop is not None else None
        links = self.links_into(node_id)
        values: dict[str, Any] = {}
        for port in spec.inputs:
            if port.name == loss_port:
                values[port.name] = loop.forward
                continue
            got = [pull(l.src)[l.src_port] for _, l in links if l.dst_port == port.name]
            values[port.name] = got if port.multiple else (got[0] if got else None)
        return values

    def value(self, node_id: str) -> dict:
        """The node's outputs: from the cache when its key is unchanged, else computed now (see module doc)."""
        spec = self.specs[node_id]
        is_trainer = spec.trainer is not None
        if spec.learnable:
            self.sync_learnable_init(node_id)
        if is_trainer:
            training.start_state(self, node_id)
        key = self.key(node_id)
        entry = self.cache.get(node_id)
        if entry is not None and entry.key == key and (not is_trainer or training.reuse(self, node_id, key)):
            self._report_cached(node_id, entry)
            return entry.outputs
        loop = TrainingLoop(self, node_id) if is_trainer else None  # computes the loop's static part first
        inputs = self.inputs_of(node_id, self.value, loop)
        self.check_cancelled()
        self.bus.emit("node_started", node=node_id, node_type=spec.name)
        started = time.perf_counter()
        if loop is not None:
            loop.set_trainable()
        try:
            outputs = self.call(node_id, inputs, loop=loop)
        except Cancelled:
            if loop is not None:
                training.keep_partial(self, node_id, loop)
            raise
        if loop is not None:
            outputs = training.finish(self, node_id, key, loop, outputs)
        seconds = time.perf_counter() - started
        self.cache[node_id] = CacheEntry(key, outputs, seconds)
        self._report_finished(node_id, outputs, seconds, cached=False)
        if self.auto_preview:
            self._auto_preview(node_id, outputs)
        return outputs

    def call(self, node_id: str, inputs: dict, iteration: int | None = None,
             loop: TrainingLoop | None = None) -> dict:
        """Run a node function once; exceptions become NodeErrors that name the node."""
        spec = self.specs[node_id]
        ctx = RunContext(self, node_id, iteration, loop)
        self.counts[node_id] += 1
        try:
            if spec.stochastic and iteration is None:
                torch.manual_seed(_node_seed(self.graph.seed, node_id))
            result = spec.fn(ctx, **inputs, **self.params(node_id))
            return spec.normalise_result(result)
        except (NodeError, Cancelled, GraphError, KeyboardInterrupt):
            raise
        except torch.cuda.OutOfMemoryError as exc:  # in the node, or in a trainer's backward() or step
            oom = out_of_memory_message(exc)
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the run unreported
            raise node_error(node_id, f"{type(exc).__name__}: {exc}", traceback.format_exc()) from None
        # Only out-of-memory gets here, its traceback (and the failed call's frames) gone.
        del ctx, inputs
        if loop is not None:
            loop.release()  # the iteration's activations
        release_gpu_memory()
        raise node_error(node_id, oom)

    def record_file(self, node_id: str, path: Path) -> None:
        """A node is writing ``path``: listed on its node_finished event and in the run's manifest."""
        self.files_written.setdefault(node_id, []).append(str(path))

    def _report_cached(self, node_id: str, entry: CacheEntry) -> None:
        """A cache hit is reported once per run, however many nodes read it."""
        if node_id not in self._reported:
            self._report_finished(node_id, entry.outputs, entry.seconds, cached=True)

    def _report_finished(self, node_id: str, outputs: dict, seconds: float, cached: bool) -> None:
        self._reported.add(node_id)
        extra = {"files": self.files_written[node_id]} if node_id in self.files_written else {}
        self.bus.emit("node_finished", node=node_id, node_type=self.specs[node_id].name, seconds=seconds,
                      cached=cached, outputs={k: summarize(v) for k, v in outputs.items()}, **extra)

    def _auto_preview(self, node_id: str, outputs: dict) -> None:
        for port in self.specs[node_id].outputs:
            value = outputs.get(port.name)
            if port.type == "Images" and isinstance(value, torch.Tensor):
                self.previews.image(node_id, port.name, value, force=True)


def node_error(node_id: str, message: str, tb: str = "") -> NodeError:
    """A NodeError for a failure around a node (not raised by the node itself), with its traceback kept."""
    err = NodeError(node_id, None, message)
    err.traceback = tb
    return err


def out_of_memory_message(exc: BaseException) -> str:
    return f"out of GPU memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def release_gpu_memory() -> None:
    """Hand the cached blocks of a failed node back to the driver. Called after the ``except`` block, once the
    exception (whose traceback holds the failed call's frames and their tensors) is gone, so the memory those
    tensors held is really free; inside the block it would still be referenced."""
    torch.cuda.empty_cache()


COMPANION_LIMIT = 200  # files beside an input file whose changes a loader's key also sees


def _file_stamps(path: Path) -> list:
    """What a loader's key knows of its file: the file's and its folder's other files' names, mtimes and sizes.

    A mesh names companions the key cannot see from the param (an OBJ's MTL, the MTL's texture, a glTF's
    buffers); they sit beside it, so a change beside the file re-runs the loader (at most a needless reload)."""
    def stamp(p: Path) -> list:
        try:
            st = p.stat()
        except OSError:
            return [p.name, None, None]
        return [p.name, st.st_mtime_ns, st.st_size]

    try:
        names = sorted(n for n in os.listdir(path.parent) if n != path.name)[:COMPANION_LIMIT]
    except OSError:
        names = []
    return [stamp(path), [stamp(path.parent / n) for n in names]]  # a sub-folder stamps as itself; harmless


def _digest(parts: list[Any]) -> str:
    """A short stable hash of a key's parts."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _node_seed(seed: int, node_id: str) -> int:
    """A stochastic node outside a loop draws from its own seed, so its result is reproducible and cacheable."""
    digest = hashlib.sha1(node_id.encode("utf-8", "surrogatepass")).hexdigest()  # any str id, lone surrogates too
    return (seed * 1_000_003 + int(digest[:8], 16)) % (2**63)
