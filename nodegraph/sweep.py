"""Sweeps: one graph run for many param variants, each variant a Ray task, on one machine or a cluster.

``nodegraph sweep GRAPH --grid node.param=v1,v2 ...`` and :func:`run_sweep` build the variants (a grid,
and/or random draws from ranges), run each as a Ray task (``ray.remote`` with the CPUs/GPUs a trial asks
for; at most ``max_concurrent`` in flight), record each trial as a run in the history
(:mod:`nodegraph.history`) and write a sweep folder::

    <data folder>/sweeps/<sweep id>/
        sweep.json     the spec: graph, variants, metric, mode, where it ran
        results.json   one row per trial, sorted by the metric (failed trials last, with their error)
        results.csv    the same rows as a table
        best/          the best trial's run folder (graph as run, previews, files)

Ray is optional (``pip install nodegraph[ray]``) and imported only here. With no address a local cluster is
started on loopback without a dashboard; ``address="auto"`` or ``"HOST:PORT"`` joins an existing one. A trial
that fails (a bad override, a node error, a crashed worker) is a row with status ``error`` and the sweep goes
on; :meth:`Sweep.cancel` (Ctrl+C, the editor's Stop) cancels every trial. Tasks, not Ray Tune: a trial is one
function call with no checkpoints or schedulers, and Tune is not needed to run one.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nodegraph import history, paths

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
CANCEL_GRACE_S = 5.0  # after a cancel, how long running trials get to stop at a node/iteration boundary


# ------------------------------------------------------------------------------------------- variants


def parse_value(raw: str) -> Any:
    """One grid value: JSON when it parses (``0.1``, ``true``, ``[1,2]``), else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """``node.param=v1,v2,...`` -> (``node.param``, [v1, v2, ...]); a JSON list value may hold commas
    (``node.param=[1,2];[3,4]`` separates with ``;`` when any value is a list)."""
    key, sep, raw = text.partition("=")
    if not sep or "." not in key or not raw:
        raise ValueError(f"--grid expects NODE.PARAM=V1,V2,..., got {text!r}")
    parts = raw.split(";") if raw.lstrip().startswith("[") else raw.split(",")
    return key, [parse_value(p) for p in parts]


def parse_range(text: str) -> tuple[str, tuple[float, float, bool]]:
    """``node.param=lo:hi[:log]`` -> (``node.param``, (lo, hi, log))."""
    key, sep, raw = text.partition("=")
    bits = raw.split(":")
    if not sep or "." not in key or len(bits) not in (2, 3) or (len(bits) == 3 and bits[2] != "log"):
        raise ValueError(f"--range expects NODE.PARAM=LO:HI[:log], got {text!r}")
    lo, hi = float(bits[0]), float(bits[1])
    if len(bits) == 3 and (lo <= 0 or hi <= 0):
        raise ValueError(f"--range {key}: a log range needs LO and HI above 0")
    return key, (lo, hi, len(bits) == 3)


def variants(grid: dict[str, list[Any]] | None = None, ranges: dict[str, tuple[float, float, bool]] | None = None,
             samples: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """Every grid combination; with ``samples`` N and ``ranges``, each combination N times with the ranged
    params drawn uniformly (log-uniformly for ``log``) from a generator seeded with ``seed``."""
    grid, ranges = grid or {}, ranges or {}
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else [{}]
    if not ranges:
        return combos
    rng = random.Random(seed)
    out = []
    for combo in combos:
        for _ in range(max(1, samples)):
            drawn = {}
            for key, (lo, hi, log) in ranges.items():
                drawn[key] = math.exp(rng.uniform(math.log(lo), math.log(hi))) if log else rng.uniform(lo, hi)
            out.append({**combo, **drawn})
    return out


# ---------------------------------------------------------------------------------------------- trial


def run_trial(doc: dict, base_dir: str, overrides: dict[str, Any], device: str | None, threads: int,
              extra: dict) -> dict:
    """One trial, wherever Ray runs it: the graph with ``overrides``, recorded into a private history
    folder whose files come back with the result (so a trial on another machine lands in the driver's
    history). Never raises for a graph problem or a node error: those are the trial's ``error``."""
    import torch

    from nodegraph.graph import from_json
    from nodegraph.session import Session

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    where = {"host": socket.gethostname(), "node_id": _ray_node_id(), "pid": os.getpid()}
    with tempfile.TemporaryDirectory(prefix="nodegraph-trial-") as tmp:
        root, out_dir = Path(tmp) / "runs", Path(tmp) / "out"
        session = Session(from_json(doc, base_dir=Path(base_dir)))
        recorder = history.RunRecorder(session.executor, session.graph, source="sweep", overrides=overrides,
                                       root=root, extra={**extra, **where})
        with recorder:
            try:
                def run() -> dict:
                    session.set_params(overrides)
                    recorder.doc = session.graph.to_json()  # the graph as it runs: overrides applied
                    return session.executor.run(session.graph, device=device, out_dir=out_dir)
                recorder.record(run)
            except BaseException:  # noqa: BLE001 - recorded as the trial's status; KeyboardInterrupt too
                pass
        summary = json.loads((root / recorder.run_id / "run.json").read_text())
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return {"run": summary, "files": files, "trial_seconds": time.perf_counter() - started, **where}


def _ray_node_id() -> str | None:
    try:
        import ray
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------- sweep


@dataclass
class Sweep:
    """A sweep in progress or done: its folder, its rows, and :meth:`cancel`."""

    id: str
    folder: Path
    graph: str
    metric: str | None
    mode: str
    trials: list[dict[str, Any]]
    rows: list[dict] = field(default_factory=list)
    status: str = "running"
    started: float = field(default_factory=time.time)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Cancel every trial: queued ones never start, running ones stop (forced after a grace period)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def sorted_rows(self) -> list[dict]:
        """Rows with the metric first (best first), then those without it (failed, cancelled)."""
        def key(row: dict) -> tuple:
            value = row.get("metric")
            if value is None or row.get("status") != "ok":
                return (1, row["trial"])
            return (0, value if self.mode == "min" else -value, row["trial"])
        return sorted(self.rows, key=key)

    def best(self) -> dict | None:
        rows = self.sorted_rows()
        return rows[0] if rows and rows[0].get("metric") is not None and rows[0]["status"] == "ok" else None

    def to_json(self) -> dict:
        return {"id": self.id, "graph": self.graph, "metric": self.metric, "mode": self.mode,
                "status": self.status, "started": self.started, "folder": str(self.folder),
                "trials": len(self.trials), "rows": self.sorted_rows(), "best": self.best()}


def sweeps_dir() -> Path:
    """Where sweep folders go: ``<user data folder>/sweeps``."""
    return paths.user_data_dir() / "sweeps"


def run_sweep(graph: str | Path | dict, trials: list[dict[str, Any]], metric: str | None = None,
              mode: str = "min", address: str | None = None, cpus_per_trial: float = 1.0,
              gpus_per_trial: float = 0.0, max_concurrent: int | None = None, device: str | None = None,
              base_dir: str | Path | None = None, on_row: Callable[[dict], None] | None = None,
              sweep: Sweep | None = None, history_root: Path | None = None) -> Sweep:
    """Run ``graph`` (a file, or a document with ``base_dir``) once per override dict in ``trials`` as Ray
    tasks; returns the finished :class:`Sweep` (rows sorted by ``metric``, ``mode`` min or max).

    ``on_row(row)`` is called as each trial ends (the editor's table). Pass a ``sweep`` made by
    :func:`new_sweep` to be able to cancel it from another thread.
    """
    doc, base = _document(graph, base_dir)
    sweep = sweep or new_sweep(doc.get("name") or "untitled", trials, metric, mode)
    sweep.folder.mkdir(parents=True, exist_ok=True)
    started_ray = connect(address)
    _write_spec(sweep, doc, address, cpus_per_trial, gpus_per_trial, max_concurrent)
    try:
        _drive(sweep, doc, str(base), device, cpus_per_trial, gpus_per_trial, max_concurrent, on_row,
               history_root)
    finally:
        if started_ray:
            disconnect()
    return sweep


def new_sweep(graph_name: str, trials: list[dict[str, Any]], metric: str | None = None,
              mode: str = "min") -> Sweep:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be min or max, not {mode!r}")
    if not trials:
        raise ValueError("a sweep needs at least one variant (--grid or --random with --range)")
    sweep_id = history.new_run_id()
    return Sweep(sweep_id, sweeps_dir() / sweep_id, graph_name, metric, mode, trials)


def _document(graph: str | Path | dict, base_dir: str | Path | None) -> tuple[dict, Path]:
    if isinstance(graph, dict):
        return graph, Path(base_dir or Path.cwd())
    path = Path(graph).resolve()
    return json.loads(path.read_text()), Path(base_dir) if base_dir else path.parent


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``), or start a local one on loopback with
    no dashboard when None. Returns whether this call started Ray (and so should stop it)."""
    if not address and "ray" not in sys.modules:
        # Ray's "single-machine" mode: every Ray process binds 127.0.0.1 (otherwise Ray swaps 127.0.0.1 for
        # the machine's routable address and listens on every interface). Read when Ray is imported.
        os.environ.setdefault(LOOPBACK_ENV, "0")
    import ray

    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, _node_ip_address="127.0.0.1" if _is_loopback(address) else None, **common)
    else:
        ray.init(address="local", _node_ip_address="127.0.0.1", **common)  # never an already running one
    return True


def disconnect() -> None:
    import ray

    ray.shutdown()


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "auto")


def _drive(sweep: Sweep, doc: dict, base_dir: str, device: str | None, cpus: float, gpus: float,
           max_concurrent: int | None, on_row: Callable[[dict], None] | None, history_root: Path | None) -> None:
    import ray

    task = ray.remote(run_trial).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    threads = max(1, int(cpus)) if cpus else 0
    limit = max_concurrent or len(sweep.trials)
    queue = list(enumerate(sweep.trials))
    running: dict[Any, int] = {}
    cancel_at: float | None = None
    while queue or running:
        if sweep.cancelled:
            if cancel_at is None:
                cancel_at = time.monotonic()
                for ref in running:
                    ray.cancel(ref)
                for index, overrides in queue:
                    _add_row(sweep, _row(index, overrides, status="cancelled"), on_row, history_root)
                queue = []
            elif time.monotonic() - cancel_at > CANCEL_GRACE_S:
                for ref in running:
                    ray.cancel(ref, force=True)
        while queue and len(running) < limit and not sweep.cancelled:
            index, overrides = queue.pop(0)
            extra = {"sweep": sweep.id, "trial": index}
            running[task.remote(doc, base_dir, overrides, device, threads, extra)] = index
        if not running:
            break
        done, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        for ref in done:
            index = running.pop(ref)
            _add_row(sweep, _collect(ref, index, sweep.trials[index], sweep), on_row, history_root)
    sweep.status = "cancelled" if sweep.cancelled else "done"
    _write_results(sweep, history_root)


def _collect(ref: Any, index: int, overrides: dict, sweep: Sweep) -> dict:
    import ray

    try:
        result = ray.get(ref)
    except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError) as exc:
        status = "cancelled" if sweep.cancelled else "error"
        return _row(index, overrides, status=status, error=None if sweep.cancelled else str(exc))
    except Exception as exc:  # noqa: BLE001 - a crashed or lost trial is a row, the sweep goes on
        return _row(index, overrides, status="error", error=f"{type(exc).__name__}: {exc}")
    run = result["run"]
    row = _row(index, overrides, status=run["status"], error=_error_text(run.get("error")),
               run_id=run["id"], seconds=run.get("seconds"), metrics=run.get("metrics") or {},
               host=result.get("host"), node_id=result.get("node_id"))
    row["_files"] = result["files"]
    if sweep.metric is None and row["metrics"]:
        sweep.metric = next(iter(row["metrics"]))
    return row


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    items = error if isinstance(error, list) else [error]
    return "; ".join(".".join(str(p) for p in (e.get("node"), e.get("field")) if p) + f": {e.get('message')}"
                     for e in items if isinstance(e, dict)) or str(error)


def _row(index: int, overrides: dict, status: str, **fields: Any) -> dict:
    return {"trial": index, "overrides": overrides, "status": status, "error": None, "run_id": None,
            "seconds": None, "metrics": {}, "metric": None, "host": None, "node_id": None, **fields}


def _add_row(sweep: Sweep, row: dict, on_row: Callable[[dict], None] | None, history_root: Path | None) -> None:
    files = row.pop("_files", None)
    if files:
        root = history.history_dir(history_root)
        for rel, data in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        history.prune(root, keep={row["run_id"]})
    sweep.rows.append(row)
    for r in sweep.rows:  # the metric may have been chosen by this row (the first with metrics)
        r["metric"] = r["metrics"].get(sweep.metric) if sweep.metric else None
    _write_results(sweep, history_root, final=False)
    if on_row:
        on_row(dict(row, metric=row.get("metric")))


def _write_spec(sweep: Sweep, doc: dict, address: str | None, cpus: float, gpus: float,
                max_concurrent: int | None) -> None:
    spec = {"id": sweep.id, "graph": sweep.graph, "metric": sweep.metric, "mode": sweep.mode,
            "trials": sweep.trials, "address": address, "cpus_per_trial": cpus, "gpus_per_trial": gpus,
            "max_concurrent": max_concurrent, "document": doc}
    (sweep.folder / "sweep.json").write_text(json.dumps(spec, indent=1, default=str) + "\n")


def _write_results(sweep: Sweep, history_root: Path | None, final: bool = True) -> None:
    """results.json and results.csv (sorted by the metric); when the sweep ends, best/ too."""
    paths.write_atomic(sweep.folder / "results.json", json.dumps(sweep.to_json(), indent=1, default=str) + "\n")
    paths.write_atomic(sweep.folder / "results.csv", results_csv(sweep))
    best = sweep.best()
    if final and best and best.get("run_id"):
        root = history.history_dir(history_root)
        source = root / best["run_id"]
        if source.is_dir():
            shutil.rmtree(sweep.folder / "best", ignore_errors=True)
            shutil.copytree(source, sweep.folder / "best")


def results_csv(sweep: Sweep) -> str:
    """The results table: trial, one column per swept param, status, the metric, every metric, where."""
    rows = sweep.sorted_rows()
    params = sorted({k for r in rows for k in r["overrides"]})
    metrics = sorted({k for r in rows for k in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["trial", *params, "status", f"metric:{sweep.metric or ''}", *metrics, "seconds", "host",
                     "node_id", "run_id", "error"])
    for r in rows:
        writer.writerow([r["trial"], *[json.dumps(r["overrides"].get(p)) for p in params], r["status"],
                         r["metric"], *[r["metrics"].get(m) for m in metrics], r["seconds"], r["host"],
                         r["node_id"], r["run_id"], r["error"]])
    return buf.getvalue()
