"""Edit a param, see the render: the editor's core loop on the textured cow at the tutorial's 512x512, CPU.

    python benchmarks/edit_latency.py                 # 15 light edits, CPU rasterizer and shading kernel
    python benchmarks/edit_latency.py --edits 30 --image-size 1024
    python benchmarks/edit_latency.py --backend pytorch3d --edits 3   # PyTorch3D's rasterizer and shader

Starts a real editor server (tests/editor_server.py: the worker process, the event websocket), runs
graphs/render_textured_cow.json once (loads the cow, compiles or loads the kernels), then moves the light
back and forth. Each edit is what the page sends: the whole document to ``POST /api/run``; the latency is from
sending it to the render's image preview arriving on the websocket (what the canvas then draws), so it
includes the HTTP hop, the worker's cache check, rasterizing and shading the frame, the PNG and the frame
to the client. Prints p50 / p90 / max and the render node's own time from its events.

Target (issue 12): the cow at 512x512 shows within 100 ms of a param edit.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import httpx  # noqa: E402

from editor_server import EditorServer  # noqa: E402
from status_latency import Events, cow_server, pct, textured_cow  # noqa: E402


def cow_doc(image_size: int, backend: str, light_z: float) -> dict:
    """The tutorial's graph as shipped, at ``image_size``, with the given backends and light position."""
    return textured_cow({"raster": {"image_size": image_size}, "rasterizer": {"backend": backend},
                         "shader": {"backend": backend}, "light": {"location": [0.0, 0.0, light_z]}})


def is_render_preview(event: dict) -> bool:
    return event.get("type") == "preview" and event.get("node") == "render" and event.get("kind") == "image"


async def one_edit(srv: EditorServer, ev: Events, doc: dict) -> tuple[float, dict]:
    """Send ``doc`` as the page does; seconds until the render's preview arrives, and where they went (the
    server's event times, on the same clock: the run's start, the render node's start and end, the preview)."""
    start = len(ev.events)
    sent, wall = time.perf_counter(), time.time()
    r = await asyncio.to_thread(httpx.post, srv.url + "/api/run", json={"doc": doc}, timeout=600)
    r.raise_for_status()
    shown = await ev.until(is_render_preview, 600, since=start)
    latency = time.perf_counter() - sent
    if shown is None:
        raise RuntimeError(f"no preview of the render arrived ({ev.closed or 'timed out'})")
    await ev.until(lambda e: e["type"] == "run_finished", 600, since=start)
    events = ev.events[start:]

    def at(kind: str, node: str | None = None) -> float:
        t = next((e["t"] for e in events if e["type"] == kind and (node is None or e.get("node") == node)), None)
        return (t - wall) * 1000 if t is not None else float("nan")
    return latency, {"run started": at("run_started"), "render started": at("node_started", "render"),
                     "render finished": at("node_finished", "render"), "preview sent": shown["t"] * 1000 - wall * 1000}


async def main(args: argparse.Namespace) -> None:
    async with cow_server() as (srv, ev):
        first, _ = await one_edit(srv, ev, cow_doc(args.image_size, args.backend, -3.0))
        print(f"cow at {args.image_size} px, backend {args.backend}; first run (load, kernels): {first:.2f} s")
        latencies, marks = [], []
        for i in range(args.edits):
            latency, times = await one_edit(srv, ev, cow_doc(args.image_size, args.backend,
                                                             -2.5 if i % 2 == 0 else -3.0))
            latencies.append(latency * 1000)
            marks.append(times)
        print(f"{args.edits} light edits, edit -> render preview on the websocket: "
              f"p50 {statistics.median(latencies):.1f} ms, p90 {pct(latencies, 0.9):.1f} ms, "
              f"max {max(latencies):.1f} ms")
        print("  medians, ms after sending the edit: " + ", ".join(
            f"{name} {statistics.median(m[name] for m in marks):.1f}" for name in marks[0]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--edits", type=int, default=15)
    parser.add_argument("--backend", default="auto", choices=["auto", "numba", "pytorch3d"])
    asyncio.run(main(parser.parse_args()))
