"""Does the editor server answer while a node computes in C++? And does Stop end such a node?

    python benchmarks/status_latency.py                    # cow at 1024 px, naive raster, 4 faces/pixel (~35 s)
    python benchmarks/status_latency.py --image-size 512   # shorter (~9 s on one CPU thread)
    python benchmarks/status_latency.py --no-stop          # skip the Stop phase

Starts a real editor server (tests/editor_server.py) and runs the textured cow rendered naively
(``bin_size=0``) with 4 faces per pixel on the CPU: PyTorch3D's CPU rasterizer holds the GIL for the whole
call. While the render node computes, it polls ``GET /api/status`` every 20 ms (one request at a time,
each answer's latency measured) and pings the event websocket every 100 ms (ping -> pong round trips), then
prints p50 / p99 / max of both and whether the websocket stayed connected. Phase two (unless ``--no-stop``)
edits the light so the render runs again, presses Stop 2 s into the node and reports how long the run took to
end and how it ended.

Target (issue "The engine's shape", item 5): status and websocket within 50 ms at the 99th percentile.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import websockets  # noqa: E402

from editor_server import EditorServer, make_library  # noqa: E402


def textured_cow(params: dict[str, dict]) -> dict:
    """graphs/render_textured_cow.json as the page would post it, with ``{node id: {param: value}}`` set."""
    doc = json.loads((ROOT / "graphs" / "render_textured_cow.json").read_text())
    for node in doc["nodes"]:
        node["params"].update(params.get(node["id"], {}))
    return doc


def cow_doc(image_size: int, light_z: float = -3.0) -> dict:
    return textured_cow({
        "raster": {"image_size": image_size, "bin_size": 0, "faces_per_pixel": 4, "blur_radius": 1e-4},
        "rasterizer": {"backend": "pytorch3d"},   # the long C++ call under test (ours takes milliseconds)
        "light": {"location": [0.0, 0.0, light_z]},
    })


def decode(frame):
    if isinstance(frame, bytes):
        n = int.from_bytes(frame[:4], "little")
        return json.loads(frame[4:4 + n])
    return json.loads(frame)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def corrected(values: list[float], every: float) -> list[float]:
    """Latencies as a client polling every ``every`` s would have seen them: a request stuck for L seconds also
    holds back the ones that would have been sent meanwhile (waiting L - every, L - 2 every, ...); counting only
    the answers would hide a stall behind the few requests that got through (coordinated omission)."""
    out = []
    for latency in values:
        out.append(latency)
        late = latency - every
        while late > every:
            out.append(late)
            late -= every
    return out


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "no answers"
    ms = [v * 1000 for v in values]
    return f"p50 {statistics.median(ms):8.1f} ms   p99 {pct(ms, 0.99):8.1f} ms   max {max(ms):8.1f} ms   (n={len(ms)})"


class Events:
    """Reads the event websocket in the background; pings it on demand."""

    def __init__(self, srv: EditorServer) -> None:
        self.srv = srv
        self.events: list[dict] = []
        self.closed: str | None = None
        self.changed = asyncio.Event()

    async def open(self) -> None:
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.srv.port}/api/events", max_size=2**26,
                                           ping_interval=None, open_timeout=120)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.events.append(decode(frame))
                self.changed.set()
        except websockets.ConnectionClosed as exc:
            self.closed = f"closed: {exc}"
        self.closed = self.closed or "closed"
        self.changed.set()

    async def until(self, pred, limit: float, since: int = 0) -> dict | None:
        """The first event from index ``since`` on that ``pred`` accepts, waiting up to ``limit`` seconds."""
        seen = since
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if pred(event):
                    return event
            seen = len(self.events)
            if self.closed:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        return None


def poll_status(url: str, stop: threading.Event, every: float, out: list[tuple], errors: list[str]) -> None:
    """One request at a time; records (wall-clock time sent, latency)."""
    with httpx.Client(base_url=url, timeout=600) as client:
        while not stop.is_set():
            sent, t = time.time(), time.perf_counter()
            try:
                client.get("/api/status").raise_for_status()
                out.append((sent, time.perf_counter() - t))
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(every)


def during(samples: list[tuple], begin: float, end: float) -> list[float]:
    """Latencies of the requests sent while the node computed (server event times: the same wall clock)."""
    return [latency for sent, latency in samples if begin <= sent <= end]


async def measure_render(srv: EditorServer, ev: Events, doc: dict, every: float) -> dict:
    """Run ``doc``, polling the status and pinging the websocket from the start of the run to its end; keep
    what was sent while the render node computed (its node_started .. node_finished event times). The events
    themselves may arrive late (an old server could not send them while the node held the GIL), so nothing
    waits for them before measuring."""
    start = len(ev.events)
    samples: list[tuple] = []
    errors: list[str] = []
    pings: list[tuple] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_status, args=(srv.url, stop, every, samples, errors))
    r = await asyncio.to_thread(httpx.post, srv.url + "/api/run", json={"doc": doc}, timeout=600)
    r.raise_for_status()
    poller.start()
    while ev.closed is None:
        sent, t = time.time(), time.perf_counter()
        try:
            waiter = await ev.ws.ping()
            await asyncio.wait_for(waiter, 600)
            pings.append((sent, time.perf_counter() - t))
        except (websockets.ConnectionClosed, asyncio.TimeoutError) as exc:
            ev.closed = ev.closed or f"ping failed: {type(exc).__name__}"
            break
        if any(e["type"] == "run_finished" for e in ev.events[start:]):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.to_thread(poller.join)
    if ev.closed:  # the events of this run: from /api/status, which keeps no times; reconnect to read them
        return {"status": [l for _, l in samples], "errors": errors, "pings": [l for _, l in pings],
                "node_s": None, "note": "websocket lost: all requests of the run counted"}
    events = ev.events[start:]
    began = next(e["t"] for e in events if e["type"] == "node_started" and e.get("node") == "render")
    ended = next(e["t"] for e in events if e["type"] in ("node_finished", "run_finished") and e.get("node") in ("render", None)
                 and e["t"] >= began)
    return {"status": during(samples, began, ended), "errors": errors, "pings": during(pings, began, ended),
            "node_s": ended - began, "run": next(e for e in events if e["type"] == "run_finished").get("status")}


async def measure_stop(srv: EditorServer, ev: Events, doc: dict, after: float) -> dict:
    """Run ``doc`` (upstream cached: the render starts at once) and press Stop ``after`` seconds later."""
    start = len(ev.events)
    r = await asyncio.to_thread(httpx.post, srv.url + "/api/run", json={"doc": doc}, timeout=600)
    r.raise_for_status()
    await asyncio.sleep(after)
    t0 = time.perf_counter()
    stop = await asyncio.to_thread(httpx.post, srv.url + "/api/stop", timeout=600)
    stop_answer_s = time.perf_counter() - t0
    end = await ev.until(lambda e: e["type"] == "run_finished", 600, since=start)
    render = next((e for e in ev.events[start:] if e["type"] == "node_finished" and e.get("node") == "render"), None)
    return {"stop_answer_s": stop_answer_s, "ended_s": time.perf_counter() - t0, "stop": stop.json(),
            "render_finished": render is not None,
            "end": {k: end.get(k) for k in ("status", "cache_dropped", "message") if k in end} if end else None}


@contextlib.asynccontextmanager
async def cow_server():
    """A real editor server whose library holds the textured cow, and its event websocket, open; both closed
    afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        srv = EditorServer(tmp, make_library(tmp, with_cow=True) / "toy.json").start(timeout=120)
        try:
            ev = Events(srv)
            await ev.open()
            yield srv, ev
            await ev.ws.close()
        finally:
            srv.stop()


async def main(args: argparse.Namespace) -> None:
    async with cow_server() as (srv, ev):
        print(f"server at {srv.url} ({ROOT}); cow at {args.image_size} px, naive raster, 4 faces/pixel, CPU")
        got = await measure_render(srv, ev, cow_doc(args.image_size), args.every)
        print(f"render node: {got['node_s']:.1f} s, run {got.get('run')}" if got["node_s"] else got["note"])
        print(f"GET /api/status every {args.every * 1000:.0f} ms during the node: {fmt_ms(got['status'])}")
        print(f"  the same, counting the requests a stall held back:  {fmt_ms(corrected(got['status'], args.every))}")
        if got["errors"]:
            print(f"  {len(got['errors'])} failed requests, first: {got['errors'][0]}")
        print(f"websocket ping -> pong during the node:        {fmt_ms(got['pings'])}")
        print(f"  the same, counting the pings a stall held back:    {fmt_ms(corrected(got['pings'], 0.1))}")
        print(f"websocket: {ev.closed or 'stayed connected'}")
        if ev.closed:
            ev = Events(srv)
            await ev.open()
        if args.stop:
            s = await measure_stop(srv, ev, cow_doc(args.image_size, light_z=-2.5), args.stop_after)
            print(f"Stop {args.stop_after:g} s into the render: /api/stop answered in {s['stop_answer_s']:.2f} s, "
                  f"the run ended {s['ended_s']:.1f} s after Stop: {s['end']}; the render "
                  + ("finished anyway" if s["render_finished"] else "was ended"))
        await ev.ws.close()  # the reconnected one, if the first was lost


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--every", type=float, default=0.02, help="seconds between status requests")
    parser.add_argument("--no-stop", dest="stop", action="store_false", help="skip the Stop phase")
    parser.add_argument("--stop-after", type=float, default=2.0, help="seconds into the render node to press Stop")
    asyncio.run(main(parser.parse_args()))
