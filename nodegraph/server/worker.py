"""The run worker: one child process that runs graphs, so the server's event loop never waits on a node.

A node that computes in C++ without releasing the GIL (PyTorch3D's CPU rasterizer holds it for a whole call)
used to stall the server itself: ``/api/status`` waited for the node, websocket clients were dropped, and Stop
did nothing until the node returned. Here the executor lives in a child process (multiprocessing ``spawn``:
the server is never forked) and the server only reads its events.

- The child keeps ONE executor for its whole life, so the cache and learned state survive between runs and a
  re-run recomputes only what changed (exactly as the in-process executor did).
- Events come back over a pipe as plain picklable data (dicts; a preview's ``data`` as bytes) and are handed
  to ``on_event`` on the parent's reader thread, in the order the executor emitted them.
- Stop sends ``cancel``: the child's executor stops at the next node or iteration, keeping its cache. A run
  that has not ended :data:`STOP_GRACE_S` seconds after Stop (a node stuck in one long C++ call) is ended by
  terminating the child: ``run_finished`` then says ``status: "cancelled"`` and ``cache_dropped: true``.
- A child that dies (a segfault, an abort, killed for memory) ends the run as an error naming the node that was
  running (the last ``node_started`` without its ``node_finished``), with ``cache_dropped: true``.
- After either, the next run starts a fresh child; the server and the open document are untouched.

Only :func:`build_executor` and :func:`_run_one` (and :func:`_cancel`) touch the engine's API.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
import uuid
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Callable

STOP_GRACE_S = 3.0  # after Stop, how long a run may take to reach a cancel point before its worker is ended
CLOSE_TIMEOUT_S = 5.0  # how long a shut-down child may take to exit before it is killed

Event = dict
_MP = multiprocessing.get_context("spawn")


# ----------------------------------------------------------------------------------- the engine's side


def build_executor(emit: Callable[[dict], None]):
    """The child's one executor: previews every Images output (as the editor wants) and reports every event
    through ``emit``. Built once per child and kept for every run it does."""
    from nodegraph.executor import Executor

    executor = Executor()  # the default registry: the library and the plugins this environment names
    executor.auto_preview = True
    executor.bus.subscribe(emit)
    return executor


def _run_one(executor, doc: dict, base_dir: str, path: str | None, targets: list[str] | None,
             device: str | None, out_dir: str) -> None:
    """Run one working document on the long-lived executor. Raises what the executor raises (it has emitted
    ``node_error`` / ``run_finished`` for NodeError and Cancelled; the caller reports anything else)."""
    from nodegraph.graph import from_json
    from nodegraph.history import RunRecorder

    graph = from_json(doc, base_dir=Path(base_dir), path=Path(path) if path else None)
    with RunRecorder(executor, graph, source="editor") as recorder:  # the run is kept in the run history
        recorder.record(lambda: executor.run(graph, device=device, targets=targets, out_dir=Path(out_dir)))


def _cancel(executor) -> None:
    executor.cancel()


# ------------------------------------------------------------------------------------------ the child


def _plain(value: Any) -> Any:
    """A copy made of dicts, lists, str, numbers, None and bytes only: safe to pickle into the server."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)


def _child_main(conn) -> None:
    """The worker process: read jobs and cancels from ``conn``, run jobs one at a time, send events back."""
    from nodegraph.errors import Cancelled, GraphError, NodeError
    from nodegraph.raster.warm import warm_up_in_background

    warm_up_in_background()  # compile the CPU rasterizer's kernels now, not at the first render
    # Ctrl+C in the server's terminal reaches the whole process group: the server decides when the worker ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    def emit(event: dict) -> None:
        send(("event", _plain(event)))

    jobs: queue.Queue = queue.Queue()
    current: dict = {"job": None}
    cancelled: set[str] = set()
    executor = build_executor(emit)

    def keep_cancelling(job_id: str) -> None:
        # The executor clears its cancel flag when a run starts: repeat the request until the job is over, so a
        # Stop that lands just before that clear is not lost.
        while current["job"] == job_id:
            _cancel(executor)
            time.sleep(0.05)

    def listen() -> None:
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server has gone: nothing is left to report to
            if kind == "run":
                jobs.put(payload)
            elif kind == "cancel":
                cancelled.add(payload)
                if current["job"] == payload:
                    threading.Thread(target=keep_cancelling, args=(payload,), daemon=True).start()
            elif kind == "shutdown":
                jobs.put(None)
                return

    threading.Thread(target=listen, name="nodegraph-worker-commands", daemon=True).start()
    send(("ready", os.getpid()))
    while (job := jobs.get()) is not None:
        job_id = job["id"]
        current["job"] = job_id
        started = time.perf_counter()
        try:
            if job_id in cancelled:
                emit({"type": "run_finished", "t": time.time(), "status": "cancelled", "seconds": 0.0})
            else:
                _run_one(executor, **job["args"])
        except (NodeError, Cancelled):
            pass  # the executor has emitted node_error / run_finished
        except GraphError as exc:
            emit({"type": "run_finished", "t": time.time(), "status": "error",
                  "seconds": time.perf_counter() - started,
                  "error": exc.problems[0].to_json() if exc.problems else None,
                  "problems": [p.to_json() for p in exc.problems]})
        except Exception as exc:  # a bug in a node library or the executor: report it, keep the worker
            message = f"{type(exc).__name__}: {exc}"
            emit({"type": "node_error", "t": time.time(), "node": None, "field": None, "message": message,
                  "traceback": traceback.format_exc()})
            emit({"type": "run_finished", "t": time.time(), "status": "error",
                  "seconds": time.perf_counter() - started, "error": {"node": None, "field": None, "message": message}})
        finally:
            current["job"] = None
            send(("done", job_id))
    conn.close()


# ----------------------------------------------------------------------------------------- the parent


class Worker:
    """Owns the child process that runs graphs; one run at a time.

    ``on_event(event)`` gets every event of every run, on the worker's reader thread, in order; after the last
    event of a run (its ``run_finished``), ``on_done()`` is called and :meth:`wait` returns.
    """

    def __init__(self, on_event: Callable[[Event], None], on_done: Callable[[], None] | None = None,
                 stop_grace_s: float = STOP_GRACE_S) -> None:
        self.on_event = on_event
        self.on_done = on_done or (lambda: None)
        self.stop_grace_s = stop_grace_s
        self._lock = threading.RLock()
        self._proc = None
        self._conn = None
        self._job: dict | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.starts = 0  # how many child processes this worker has started (tests: a fresh one after a crash)

    # ------------------------------------------------------------------ the process
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self) -> None:
        """Start the child if none is alive (it imports the node library: a few seconds, off the caller)."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                return
            parent_end, child_end = _MP.Pipe(duplex=True)
            proc = _MP.Process(target=_child_main, args=(child_end,), name="nodegraph-worker", daemon=True)
            proc.start()
            child_end.close()  # the child holds its end: the reader sees EOF the moment the child dies
            self._proc, self._conn = proc, parent_end
            self.starts += 1
            threading.Thread(target=self._read, args=(proc, parent_end), name="nodegraph-worker-events",
                             daemon=True).start()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Shut the child down (the server is stopping): ask it to exit, kill it if it does not."""
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc = None
        if proc is None:
            return
        try:
            conn.send(("shutdown", None))
        except (OSError, ValueError):
            pass
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)

    # ------------------------------------------------------------------ runs
    @property
    def running(self) -> bool:
        return not self._idle.is_set()

    def run(self, doc: dict, base_dir: str, path: str | None, targets: list[str] | None, device: str | None,
            out_dir: str) -> str:
        """Start a run in the child (starting a child if none is alive); returns the job id."""
        with self._lock:
            if self.running:
                raise RuntimeError("a run is already in progress")
            job = {"id": uuid.uuid4().hex[:12], "args": {"doc": doc, "base_dir": str(base_dir),
                   "path": str(path) if path else None, "targets": targets, "device": device, "out_dir": str(out_dir)}}
            for attempt in range(2):
                self.start()
                try:
                    self._conn.send(("run", job))
                    break
                except (OSError, ValueError):  # the child died just now: start another once
                    self._forget(self._proc)
                    if attempt:
                        raise
            self._job = {"id": job["id"], "run_id": None, "started": time.perf_counter(), "open": [],
                         "finished": False, "stopping": False, "killed": False}
            self._idle.clear()
            return job["id"]

    def cancel(self) -> bool:
        """Ask the run to stop at its next cancel point; end the child if it has not after the grace period."""
        with self._lock:
            job = self._job
            if job is None or self._conn is None:
                return False
            job["stopping"] = True
            try:
                self._conn.send(("cancel", job["id"]))
            except (OSError, ValueError):
                pass  # the reader reports the dead child
            timer = threading.Timer(self.stop_grace_s, self._stop_overdue, args=(job["id"],))
            timer.daemon = True
            timer.start()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (if any) has ended and been reported; False on timeout."""
        return self._idle.wait(timeout)

    def _stop_overdue(self, job_id: str) -> None:
        with self._lock:
            job, proc = self._job, self._proc
            if job is None or job["id"] != job_id or job["finished"] or proc is None:
                return
            job["killed"] = True
        proc.kill()  # a node stuck in C++ cannot see the cancel flag; the reader reports the cancelled run

    # ------------------------------------------------------------------ the reader
    def _read(self, proc, conn) -> None:
        """The parent's reader thread for one child: events and job ends, then the child's end."""
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - a message that cannot be read; keep reading
                traceback.print_exc()
                continue
            if kind == "event":
                self._track(payload)
                self._deliver(payload)
            elif kind == "done":
                self._end_job(payload)
        proc.join(2.0)
        conn.close()
        self._child_gone(proc)

    def _track(self, event: dict) -> None:
        job = self._job
        if job is None:
            return
        kind = event.get("type")
        if kind == "run_started":
            job["run_id"] = event.get("run_id")
        elif kind == "node_started":
            job["open"].append(event.get("node"))
        elif kind == "node_finished" and event.get("node") in job["open"]:
            job["open"].remove(event.get("node"))
        elif kind == "run_finished":
            job["finished"] = True

    def _deliver(self, event: dict) -> None:
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a broken listener must not stop the events
            traceback.print_exc()

    def _end_job(self, job_id: str | None) -> None:
        with self._lock:
            if self._job is None or (job_id is not None and self._job["id"] != job_id):
                return
            self._job = None
        try:
            self.on_done()
        finally:
            self._idle.set()

    def _forget(self, proc) -> None:
        with self._lock:
            if self._proc is proc:
                self._proc, self._conn = None, None

    def _child_gone(self, proc) -> None:
        """The child has exited: if it was running something, end that run (cancelled after Stop, else error)."""
        self._forget(proc)
        with self._lock:
            job = self._job
        if job is None:
            return
        if not job["finished"]:
            node = job["open"][-1] if job["open"] else None
            seconds = time.perf_counter() - job["started"]
            base = {"t": time.time(), "run_id": job["run_id"], "seconds": seconds, "cache_dropped": True}
            if job["stopping"]:
                self._deliver({"type": "run_finished", **base, "status": "cancelled",
                               "message": f"stopped: the worker was ended {self.stop_grace_s:g} s after Stop"
                                          + (f" while {node} was computing" if node else "")
                                          + "; its cache was dropped"})
            else:
                message = (f"the worker process {describe_exit(proc.exitcode)}"
                           + (f" while {node} was computing" if node else "")
                           + "; its cache was dropped and the next run starts a fresh worker")
                self._deliver({"type": "node_error", "t": time.time(), "node": node, "field": None,
                               "message": message, "traceback": ""})
                self._deliver({"type": "run_finished", **base, "status": "error",
                               "error": {"node": node, "field": None, "message": message}})
        self._end_job(job["id"])


def describe_exit(code: int | None) -> str:
    """How a child ended, in words: ``was killed by SIGKILL (...)``, ``crashed (SIGSEGV)``, ``exited with 3``."""
    if code is None:
        return "stopped answering"
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if name == "SIGKILL":
        return "was killed (SIGKILL: out of memory, or ended by another program)"
    return f"crashed ({name})"
