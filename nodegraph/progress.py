"""A terminal view of a run: one line per node, and a progress bar for training nodes."""
from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class TerminalProgress:
    """An event listener that prints node results and draws tqdm bars for ``progress`` events."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.bars: dict[str, tqdm] = {}

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        kind = event["type"]
        if kind == "run_started":
            self._write(f"running {event['graph']} on {event['device']} ({len(event['order'])} nodes)")
        elif kind == "node_finished":
            self._close_bar(event["node"])
            state = "cached" if event["cached"] else f"{event['seconds']:.3f} s"
            self._write(f"  {event['node']:<24} {event.get('node_type', ''):<28} {state}")
        elif kind == "progress":
            bar = self.bars.get(event["node"])
            if bar is None:
                bar = self.bars[event["node"]] = tqdm(total=event["total"], desc=f"  {event['node']}",
                                                      file=self.stream, leave=False, dynamic_ncols=True)
            bar.n = event["iteration"]
            if event.get("loss") is not None:
                bar.set_postfix(loss=f"{event['loss']:.5g}", refresh=False)
            bar.refresh()
        elif kind == "run_finished" and event["status"] != "ok":
            self._write(f"run {event['status']}")

    def _write(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def _close_bar(self, node: str) -> None:
        bar = self.bars.pop(node, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for node in list(self.bars):
            self._close_bar(node)
