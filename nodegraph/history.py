"""Run history: every run (CLI, Python, the editor, a sweep trial) remembered under the user's data folder.

A run is one folder, ``<data folder>/runs/<run id>/`` (ids sort by start time)::

    run.json        what the run was: graph name, source, status, times, device, seed, overrides, metrics
    graph.json      the graph exactly as it ran (overrides applied), re-openable in the editor
    manifest.json   device, seed, library versions, per-node seconds and cache hits, the files each node wrote
    curves.json     per-trainer, per-term loss curves: {trainer: {term: [value per iteration]}}
    previews/       the final images (PNG, longest side at most PREVIEW_SIDE) of every Images output
    files/          copies of the files the run wrote (each at most MAX_FILE_BYTES)

A :class:`RunRecorder` listens to the executor's events while a run goes on and writes the folder when it
ends, whatever the ending (ok, error, cancelled). The folder is bounded: after each run the oldest runs are
deleted until the whole history fits in ``NODEGRAPH_HISTORY_MAX_MB`` (default 2048 MB).
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

from nodegraph import paths
from nodegraph.events import EventBus

DEFAULT_MAX_MB = 2048
PREVIEW_SIDE = 256
MAX_PREVIEWS = 24
MAX_FILE_BYTES = 64 * 2**20
METRIC_TYPES = ("Loss", "Scalar")  # Loss totals, and PSNR / SilhouetteIoU / JointError / final_loss scalars

T = TypeVar("T")


def history_dir(root: str | Path | None = None) -> Path:
    """Where runs are kept: ``root`` when given (a test's or a sweep trial's private history), else
    ``<user data folder>/runs`` (``$XDG_DATA_HOME`` honoured)."""
    return Path(root) if root else paths.user_data_dir() / "runs"


def max_bytes() -> int:
    """The history's size cap, from ``NODEGRAPH_HISTORY_MAX_MB`` (default 2048 MB)."""
    try:
        return int(float(os.environ.get("NODEGRAPH_HISTORY_MAX_MB", DEFAULT_MAX_MB)) * 2**20)
    except ValueError:
        return DEFAULT_MAX_MB * 2**20


def new_run_id() -> str:
    """A run id that sorts by start time: ``YYYYmmdd-HHMMSS-ffffff-xxxx``."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now % 1 * 1e6):06d}"
    return f"{stamp}-{uuid.uuid4().hex[:4]}"


# ------------------------------------------------------------------------------------------- recording


class RunRecorder:
    """Collects one run's events and writes its history folder when the run ends.

    ``with RunRecorder(executor, graph, source="python") as rec: out = rec.record(lambda: executor.run(...))``
    The recorder never makes a run fail: a problem while writing is a warning.
    """

    def __init__(self, executor: Any, graph: Any, source: str, overrides: dict | None = None,
                 graph_file: str | Path | None = None, root: Path | None = None, extra: dict | None = None,
                 run_id: str | None = None) -> None:
        self.executor, self.graph, self.source = executor, graph, source
        self.overrides = dict(overrides or {})
        self.graph_file = str(graph_file) if graph_file else (str(graph.path) if getattr(graph, "path", None)
                                                              else None)
        self.root = history_dir(root)
        self.extra = dict(extra or {})
        self.run_id = run_id or new_run_id()
        self.doc = graph.to_json()  # the graph as it is about to run
        self.started = time.time()
        self.info: dict[str, Any] = {}
        self.nodes: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.curves: dict[str, dict[str, list[float]]] = {}
        self.images: dict[str, bytes] = {}
        self.finished: dict | None = None
        self.path: Path | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def __enter__(self) -> "RunRecorder":
        bus: EventBus = self.executor.bus
        self._unsubscribe = bus.subscribe(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    def __call__(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "run_started":
            self.info = {k: event.get(k) for k in ("device", "seed", "out_dir", "order")}
            self.info["executor_run_id"] = event.get("run_id")
        elif kind == "node_finished":
            node = event["node"]
            self.nodes[node] = {"type": event.get("node_type"), "seconds": round(float(event["seconds"]), 6),
                                "cached": bool(event.get("cached"))}
            if event.get("files"):
                self.nodes[node]["files"] = list(event["files"])
            self.outputs[node] = event.get("outputs") or {}
        elif kind == "progress":
            curves = self.curves.setdefault(event["node"], {})
            values = {"total": event.get("loss"), **(event.get("losses") or {})}
            for term, value in values.items():
                if isinstance(value, (int, float)):
                    curves.setdefault(term, []).append(float(value))
        elif kind == "preview" and event.get("kind") == "image" and isinstance(event.get("data"), bytes):
            self.images[f"{event['node']}.{event.get('port', 'images')}"] = event["data"]
        elif kind == "run_finished":
            self.finished = {k: event.get(k) for k in ("status", "seconds", "error")}

    def record(self, run: Callable[[], T]) -> T:
        """Call ``run`` (the executor's run), then write the run's folder, whatever happened."""
        results, error = None, None
        try:
            results = run()
            return results
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                self.finish(results, error)
            except Exception as exc:  # noqa: BLE001 - history must never break a run
                warnings.warn(f"nodegraph: the run could not be recorded: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ writing
    def finish(self, results: dict | None, error: BaseException | None = None) -> Path:
        """Write the run folder; ``results`` are the run's outputs when it finished (curves, final images)."""
        folder = self.root / self.run_id
        folder.mkdir(parents=True, exist_ok=True)
        status, seconds, err = self._ending(error)
        if results:
            self._from_results(results)
        metrics = self.metrics()
        out_dir = Path(self.info.get("out_dir") or getattr(self.executor, "out_dir", "."))
        files = [f for fs in getattr(self.executor, "files_written", {}).values() for f in fs]
        copied = _copy_files(files, out_dir, folder / "files")
        previews = self._write_previews(folder / "previews")
        summary = {
            "id": self.run_id, "graph": self.graph.name, "graph_file": self.graph_file,
            "base_dir": str(self.graph.base_dir), "source": self.source, "status": status, "error": err,
            "started": self.started, "seconds": seconds, "device": self.info.get("device"),
            "seed": self.graph.seed, "overrides": self.overrides, "metrics": metrics,
            "previews": previews, "files": copied, **self.extra,
        }
        manifest = {"graph": self.graph.name, "status": status, "device": self.info.get("device"),
                    "seed": self.graph.seed, "overrides": self.overrides, "seconds": seconds,
                    "out_dir": str(out_dir), "nodes": self.nodes, "files": [str(f) for f in files],
                    "versions": versions()}
        for name, data in (("graph.json", self.doc), ("manifest.json", manifest), ("curves.json", self.curves)):
            (folder / name).write_text(json.dumps(data, indent=1, default=str) + "\n")
        summary["bytes"] = _size(folder) + 2048
        paths.write_atomic(folder / "run.json", json.dumps(summary, indent=1, default=str) + "\n")
        self.path = folder
        prune(self.root, keep={self.run_id})
        return folder

    def _ending(self, error: BaseException | None) -> tuple[str, float, Any]:
        seconds = round(time.time() - self.started, 4)
        if self.finished:
            return self.finished["status"] or "error", round(float(self.finished["seconds"] or seconds), 4), \
                self.finished.get("error")
        if error is None:
            return "ok", seconds, None
        name = type(error).__name__
        if name in ("Cancelled", "KeyboardInterrupt"):
            return "cancelled", seconds, None
        problems = getattr(error, "problems", None)
        if problems:
            return "error", seconds, [p.to_json() for p in problems]
        return "error", seconds, {"node": None, "field": None, "message": f"{name}: {error}"}

    def _from_results(self, results: dict) -> None:
        """Curves from LossHistory outputs (every iteration, not only the throttled progress events) and the
        final images of every Images output."""
        from nodegraph.previews import images_to_uint8, png_bytes  # torch and PIL: only once a run has ended

        specs = getattr(self.executor, "specs", {})
        for node, outputs in results.items():
            spec = specs.get(node)
            if spec is None:
                continue
            for port in spec.outputs:
                value = outputs.get(port.name)
                if port.type == "LossHistory" and getattr(value, "series", None):
                    self.curves[node] = {k: [float(x) for x in v] for k, v in value.series.items()}
                elif port.type == "Images" and hasattr(value, "detach") and len(self.images) < MAX_PREVIEWS:
                    try:
                        self.images[f"{node}.{port.name}"] = png_bytes(images_to_uint8(value, PREVIEW_SIDE))
                    except Exception:  # noqa: BLE001 - an odd image shape: no preview, still a record
                        pass

    def metrics(self) -> dict[str, float]:
        """``{"node.output": value}`` for every Loss and Scalar output the run produced. A loss node inside a
        training loop reports through its curve: its metric is the term's last value (``<term>.loss``)."""
        specs = getattr(self.executor, "specs", {})
        found: dict[str, float] = {}
        for curves in self.curves.values():
            for term, values in curves.items():
                if term != "total" and values:
                    found[f"{term}.loss"] = values[-1]
        for node, outputs in self.outputs.items():
            spec = specs.get(node)
            if spec is None:
                continue
            for port in spec.outputs:
                if port.type in METRIC_TYPES and port.name in outputs:
                    value = _summary_number(outputs[port.name])
                    if value is not None:
                        found[f"{node}.{port.name}"] = value
        return found

    def _write_previews(self, folder: Path) -> list[str]:
        if not self.images:
            return []
        folder.mkdir(exist_ok=True)
        names = []
        for key, data in list(self.images.items())[:MAX_PREVIEWS]:
            name = paths.safe_name(key.replace(".", "__")) + ".png"
            (folder / name).write_bytes(data)
            names.append(key)
        return names


def _summary_number(summary: Any) -> float | None:
    if not isinstance(summary, dict):
        return None
    for key in ("total", "value", "mean"):
        if isinstance(summary.get(key), (int, float)) and not isinstance(summary.get(key), bool):
            return float(summary[key])
    return None


def _copy_files(files: list[str], out_dir: Path, target: Path) -> list[str]:
    copied: list[str] = []
    root = out_dir.resolve()
    for f in files:
        src = Path(f)
        if not src.is_file() or src.stat().st_size > MAX_FILE_BYTES:
            continue
        real = src.resolve()
        rel = real.relative_to(root) if real.is_relative_to(root) else Path(src.name)
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        copied.append(rel.as_posix())
    return copied


def _module_version(name: str) -> str | None:
    try:
        return importlib.import_module(name).__version__
    except Exception:  # noqa: BLE001 - optional at run time (numba: the rasterizer falls back to PyTorch3D's)
        return None


def versions() -> dict:
    """The versions a run used (nodegraph, Python, torch, PyTorch3D, CUDA, numba, the GPU's name); the CLI's
    manifest.json and every history record list the same ones."""
    import torch

    import nodegraph

    return {"nodegraph": nodegraph.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "pytorch3d": _module_version("pytorch3d"), "cuda": torch.version.cuda,
            "numba": _module_version("numba"),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


# --------------------------------------------------------------------------------------------- reading


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _check_id(run_id: str) -> str:
    if not run_id or any(c not in "0123456789abcdefghijklmnopqrstuvwxyz-_" for c in run_id):
        raise KeyError(f"no run {run_id!r}")
    return run_id


def run_path(run_id: str, root: Path | None = None) -> Path:
    """The folder of run ``run_id``; KeyError when there is none."""
    folder = history_dir(root) / _check_id(run_id)
    if not (folder / "run.json").is_file():
        raise KeyError(f"no run {run_id!r}")
    return folder


def list_runs(graph: str | None = None, root: Path | None = None) -> list[dict]:
    """Every recorded run's summary (``run.json``), newest first; only graph ``graph``'s when given (a graph
    name, or a graph file whose name is read from it)."""
    folder = history_dir(root)
    name = _graph_name(graph) if graph else None
    runs = []
    for entry in sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []:
        try:
            summary = json.loads((entry / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if name is None or summary.get("graph") == name:
            runs.append(summary)
    return runs


def _graph_name(graph: str) -> str:
    path = Path(graph)
    if path.suffix == ".json" and path.is_file():
        try:
            return json.loads(path.read_text()).get("name") or path.stem
        except ValueError:
            return path.stem
    return graph


def load_run(run_id: str, root: Path | None = None) -> dict:
    """One run in full: its summary plus ``document`` (the graph as it ran), ``manifest`` and ``curves``."""
    folder = run_path(run_id, root)
    out = json.loads((folder / "run.json").read_text())
    for key, name in (("document", "graph"), ("manifest", "manifest"), ("curves", "curves")):
        try:
            out[key] = json.loads((folder / f"{name}.json").read_text())
        except (OSError, ValueError):
            out[key] = None
    return out


def preview_path(run_id: str, key: str, root: Path | None = None) -> Path:
    """The PNG of preview ``key`` (``node.port``) of a run; KeyError when it has none."""
    path = run_path(run_id, root) / "previews" / (paths.safe_name(key.replace(".", "__")) + ".png")
    if not path.is_file():
        raise KeyError(f"run {run_id} has no preview {key!r}")
    return path


def delete_run(run_id: str, root: Path | None = None) -> None:
    """Remove a run's folder."""
    folder = run_path(run_id, root)
    shutil.rmtree(folder)
    _recorded_sizes.pop(folder, None)


def total_bytes(root: Path | None = None) -> int:
    """The history's size on disk, in bytes."""
    folder = history_dir(root)
    return sum(_recorded_size(e) for e in folder.iterdir()) if folder.is_dir() else 0


# A run's folder never changes once its run.json is written (ids are unique), so the size it records is read
# once per process: prune() after every run (and every sweep trial) then reads only the new runs' run.json.
_recorded_sizes: dict[Path, int] = {}


def _recorded_size(folder: Path) -> int:
    if folder not in _recorded_sizes:
        try:
            _recorded_sizes[folder] = int(json.loads((folder / "run.json").read_text())["bytes"])
        except (OSError, ValueError, KeyError, TypeError):  # no run.json (yet): measured, not remembered
            return _size(folder) if folder.is_dir() else 0
    return _recorded_sizes[folder]


def prune(root: Path | None = None, cap: int | None = None, keep: set[str] = frozenset()) -> list[str]:
    """Delete the oldest runs until the history fits in ``cap`` bytes (default :func:`max_bytes`); runs in
    ``keep`` stay. Returns the ids deleted."""
    folder = history_dir(root)
    cap = max_bytes() if cap is None else cap
    entries = sorted(e for e in folder.iterdir() if e.is_dir()) if folder.is_dir() else []
    sizes = {e.name: _recorded_size(e) for e in entries}
    total = sum(sizes.values())
    deleted = []
    for entry in entries:  # oldest first: ids sort by start time
        if total <= cap:
            break
        if entry.name in keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        _recorded_sizes.pop(entry, None)
        total -= sizes[entry.name]
        deleted.append(entry.name)
    return deleted


# --------------------------------------------------------------------------------------------- compare


def param_values(doc: dict) -> dict[str, Any]:
    """``{"node.param": value}`` for every param written in a graph document, plus ``seed``."""
    out: dict[str, Any] = {"seed": doc.get("seed", 0)}
    for node in doc.get("nodes", []):
        for name, value in (node.get("params") or {}).items():
            out[f"{node['id']}.{name}"] = value
    return out


def compare(a: str, b: str, root: Path | None = None) -> dict:
    """Two runs side by side: the params that differ, both metric sets, both curves, the previews both made."""
    ra, rb = load_run(a, root), load_run(b, root)
    pa, pb = param_values(ra.get("document") or {}), param_values(rb.get("document") or {})
    differ = {k: [pa.get(k), pb.get(k)] for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
    ma, mb = ra.get("metrics") or {}, rb.get("metrics") or {}
    metrics = {k: [ma.get(k), mb.get(k)] for k in sorted(set(ma) | set(mb))}
    both = [k for k in ra.get("previews") or [] if k in (rb.get("previews") or [])]
    return {"a": _head(ra), "b": _head(rb), "params": differ, "metrics": metrics,
            "curves": {"a": ra.get("curves") or {}, "b": rb.get("curves") or {}}, "previews": both}


def _head(run: dict) -> dict:
    return {k: run.get(k) for k in ("id", "graph", "status", "started", "seconds", "source", "device")}
