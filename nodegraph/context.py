"""What a node function sees of the run besides its inputs and params."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import torch
from torch import nn

from nodegraph import paths
from nodegraph.errors import NodeError

if TYPE_CHECKING:
    from nodegraph.executor import Executor
    from nodegraph.training import TrainingLoop


class RunContext:
    """Handed to every node call: the device, file access, learnable state, previews, progress, errors.

    Attributes:
        node_id: the id of the node being called.
        iteration: the training iteration when the node is called inside a trainer's loop, else None.
        loop: for a trainer node only, the :class:`~nodegraph.training.TrainingLoop` over its upstream
            sub-graph (``loop.parameters()``, ``loop.progress()``, ``loop.tap()``, ``loop.history_floats()``);
            None for every other node. The trainer's loss input arrives as ``loop.forward``.
    """

    def __init__(self, executor: "Executor", node_id: str, iteration: int | None = None,
                 loop: "TrainingLoop | None" = None) -> None:
        self._executor = executor
        self.node_id = node_id
        self.iteration = iteration
        self.loop = loop

    @property
    def device(self) -> torch.device:
        return self._executor.device

    @property
    def in_loop(self) -> bool:
        return self.iteration is not None

    @property
    def out_dir(self) -> Path:
        return self._executor.out_dir

    # ------------------------------------------------------------------ errors
    def fail(self, field: str | None, message: str) -> NoReturn:
        """Stop the run with an error that names this node and ``field``."""
        raise NodeError(self.node_id, field, message)

    def check_cancelled(self) -> None:
        """Long-running nodes call this between steps so Stop is honoured quickly."""
        self._executor.check_cancelled()

    # ------------------------------------------------------------------ files
    def asset(self, value: str) -> Path:
        """The real path of an input file named by a param, relative to the graph file, inside allowed folders."""
        try:
            return paths.resolve_asset(self._executor.base_dir, value)
        except ValueError as exc:
            self.fail("file", str(exc))

    def reference(self, owner: Path, name: str, field: str = "file") -> Path:
        """A file named inside ``owner`` (an MTL, a texture, a glTF buffer), confined like a file param; a
        reference that leaves the allowed folders stops the node on ``field``."""
        try:
            return paths.resolve_reference(self._executor.base_dir, owner, name)
        except ValueError as exc:
            self.fail(field, str(exc))

    def output_path(self, filename: str) -> Path:
        """Where to write an output file: inside the run's output folder, parent folders created."""
        try:
            path = paths.output_path(self.out_dir, filename)
        except ValueError as exc:
            self.fail("filename", str(exc))
        self._executor.record_file(self.node_id, path)
        return path

    # ------------------------------------------------------------------ learnable state
    def param(self, name: str, init: Callable[[], torch.Tensor]) -> nn.Parameter:
        """A persistent trainable tensor of this node, created by ``init()`` on first use, on the run's device."""
        return self._executor.state[self.node_id].param(name, lambda: init().to(self.device))

    def module(self, name: str, factory: Callable[[], nn.Module]) -> nn.Module:
        """A persistent trainable torch module of this node (e.g. an MLP), created by ``factory()`` once."""
        return self._executor.state[self.node_id].module(name, lambda: factory().to(self.device))

    # ------------------------------------------------------------------ previews and progress
    def preview_image(self, images: torch.Tensor, port: str = "image", force: bool = False, **meta: Any) -> None:
        """Show (B, H, W, C) images in the editor; throttled, encoded off the compute thread."""
        self._executor.previews.image(self.node_id, port, images, force=force or not self.in_loop, **meta)

    def preview_mesh(self, meshes: Any, port: str = "mesh", force: bool = False) -> None:
        from nodegraph.previews import mesh_payload

        if self._executor.previews.due(self.node_id, port, force or not self.in_loop):
            meta, data = mesh_payload(meshes)
            self._executor.previews.payload(self.node_id, port, meta, data, force=True)

    def preview_points(self, clouds: Any, port: str = "points", force: bool = False) -> None:
        from nodegraph.previews import points_payload

        if self._executor.previews.due(self.node_id, port, force or not self.in_loop):
            meta, data = points_payload(clouds)
            self._executor.previews.payload(self.node_id, port, meta, data, force=True)

    def preview_plot(self, series: dict[str, list[float]], port: str = "plot", force: bool = False) -> None:
        self._executor.previews.plot(self.node_id, port, series, force=force or not self.in_loop)
