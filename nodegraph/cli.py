"""The command line: ``python -m nodegraph run|runs|sweep|export|validate|nodes|fmt|serve``.

Bad graphs exit with code 2 and one line per problem (``node.field: message``); a node that fails while
running exits with 1 and names the node; no Python traceback unless ``--debug``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_BAD_GRAPH, EXIT_CANCELLED = 0, 1, 2, 130


def parse_override(text: str) -> tuple[str, Any]:
    """``node.param=value``: the value is read as JSON when it parses, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or "." not in key:
        raise argparse.ArgumentTypeError(f"--set expects NODE_ID.PARAM=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _print_problems(problems, prefix: str = "") -> None:
    for problem in problems:
        print(f"{prefix}{problem}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from nodegraph import history, paths, raster
    from nodegraph.errors import Cancelled, GraphError, NodeError
    from nodegraph.events import JsonLinesWriter
    from nodegraph.progress import TerminalProgress
    from nodegraph.session import load

    try:
        session = load(args.graph)
        session.set_params(dict(args.set or []))
        prepared = session.prepare()
        problems = prepared.problems
    except GraphError as exc:
        problems = exc.problems
    if problems:
        _print_problems(problems, f"{args.graph}: ")
        return EXIT_BAD_GRAPH
    out_dir = Path(args.out) if args.out else paths.default_out_dir(session.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(f"writing to {out_dir}", file=sys.stderr)
    log = JsonLinesWriter(out_dir / "events.jsonl")
    executor = session.executor
    executor.bus.subscribe(log)
    progress = TerminalProgress(enabled=not args.quiet)
    executor.bus.subscribe(progress)
    started = time.perf_counter()
    status, error = "ok", None
    raster.reset()
    recorder = history.RunRecorder(executor, session.graph, source="cli", overrides=dict(args.set or []),
                                   graph_file=args.graph)
    try:
        with recorder:
            recorder.record(lambda: executor.run(prepared, device=args.device, out_dir=out_dir))
    except GraphError as exc:
        _print_problems(exc.problems, f"{args.graph}: ")
        status, error = "error", [p.to_json() for p in exc.problems]
    except NodeError as exc:
        status, error = "error", exc.problem.to_json()
        print(f"error in node {exc.problem}", file=sys.stderr)
        if args.debug and getattr(exc, "traceback", ""):
            print(exc.traceback, file=sys.stderr)
    except (Cancelled, KeyboardInterrupt):
        status = "cancelled"
        print("cancelled", file=sys.stderr)
    finally:
        progress.close()
        log.close()
    manifest = {
        "graph": session.name, "graph_file": str(args.graph), "status": status, "error": error,
        "device": str(executor.device), "seed": session.graph.seed, "overrides": dict(args.set or []),
        "seconds": round(time.perf_counter() - started, 4), "out_dir": str(out_dir.resolve()),
        "nodes": _timings(recorder.nodes, out_dir),
        "files": [_relative(f, out_dir) for files in executor.files_written.values() for f in files],
        "versions": history.versions(), "raster_backend": raster.ran(),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    if status == "ok" and not args.quiet:
        print(f"done in {manifest['seconds']:.2f} s on {manifest['device']}; wrote {len(manifest['files'])} "
              f"file(s), events.jsonl and manifest.json to {out_dir}; recorded as run {recorder.run_id}")
    return {"ok": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(status, EXIT_BAD_GRAPH if isinstance(error, list)
                                                          else EXIT_FAILED)


def _relative(path: str, out_dir: Path) -> str:
    """A written file as the manifest lists it: relative to the output folder when inside it."""
    root = out_dir.resolve()
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


def _timings(nodes: dict[str, dict], out_dir: Path) -> dict[str, dict]:
    """The manifest's per-node seconds and cache hits: what the run's history recorder collected, with the
    files each node wrote relative to the output folder."""
    timings = {node: dict(info) for node, info in nodes.items()}
    for info in timings.values():
        if "files" in info:
            info["files"] = [_relative(f, out_dir) for f in info["files"]]
    return timings


# -------------------------------------------------------------------------------------------- runs


def _metric_text(metrics: dict, limit: int = 3) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:limit])


def cmd_runs(args: argparse.Namespace) -> int:
    from nodegraph import history

    words = list(args.words)
    if words and words[0] in ("show", "rm"):
        if len(words) < 2:
            print(f"runs {words[0]} needs a run id", file=sys.stderr)
            return EXIT_BAD_GRAPH
        try:
            if words[0] == "rm":
                for run_id in words[1:]:
                    history.delete_run(run_id)
                    print(f"deleted {run_id}")
            else:
                run = history.load_run(words[1])
                run["folder"] = str(history.run_path(words[1]))
                print(json.dumps(run if args.json else {k: v for k, v in run.items() if k != "document"},
                                 indent=2, default=str))
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    runs = history.list_runs(words[0] if words else None)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return EXIT_OK
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
        print(f"{run['id']}  {when}  {run['graph']:<24} {run['source']:<6} {run['status']:<9} "
              f"{run['seconds']:8.2f} s  {_metric_text(run.get('metrics') or {})}")
    print(f"{len(runs)} run(s) in {history.history_dir()} ({history.total_bytes() / 2**20:.1f} MB of "
          f"{history.max_bytes() / 2**20:.0f} MB)", file=sys.stderr)
    return EXIT_OK


# ------------------------------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from nodegraph import sweep as sweeps

    try:
        grid = dict(sweeps.parse_grid(g) for g in args.grid or [])
        ranges = dict(sweeps.parse_range(r) for r in args.range or [])
        trials = sweeps.variants(grid, ranges, args.random, args.seed)
        graph_file = Path(args.graph).resolve()
        doc = json.loads(graph_file.read_text())  # read once: its name here, the document run_sweep sends out
        sweep = sweeps.new_sweep(doc.get("name") or graph_file.stem, trials, args.metric, args.mode)
    except (ValueError, OSError) as exc:
        print(f"nodegraph sweep: {exc}", file=sys.stderr)
        return EXIT_BAD_GRAPH
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # not imported here: connect() sets Ray up before it is
        print("nodegraph sweep needs Ray: pip install 'nodegraph[ray]'", file=sys.stderr)
        return EXIT_FAILED

    def on_row(row: dict) -> None:
        shown = f"{row['metric']:.6g}" if row.get("metric") is not None else "-"
        where = row.get("host") or ""
        print(f"trial {row['trial']:3d} {row['status']:<9} {shown:>12}  {json.dumps(row['overrides'])}  {where}"
              + (f"  {row['error']}" if row.get("error") else ""), flush=True)

    def interrupt(signum, frame) -> None:  # first Ctrl+C cancels every trial, a second one gives up waiting
        if sweep.cancelled:
            raise KeyboardInterrupt
        print("cancelling every trial ...", file=sys.stderr, flush=True)
        sweep.cancel()

    previous = signal.signal(signal.SIGINT, interrupt)
    print(f"sweep {sweep.id}: {len(trials)} trial(s) of {args.graph}; folder {sweep.folder}", file=sys.stderr)
    try:
        sweeps.run_sweep(doc, trials, metric=args.metric, mode=args.mode, address=args.address,
                         base_dir=graph_file.parent, cpus_per_trial=args.cpus_per_trial,
                         gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent, device=args.device,
                         on_row=on_row, sweep=sweep)
    finally:
        signal.signal(signal.SIGINT, previous)
    best = sweep.best()
    failed = sum(r["status"] == "error" for r in sweep.rows)
    print(f"{sweep.status}: {len(sweep.rows)} trial(s), {failed} failed; results in {sweep.folder}"
          + (f"; best trial {best['trial']} {sweep.metric}={best['metric']:.6g} {json.dumps(best['overrides'])}"
             if best else ""), file=sys.stderr)
    if sweep.cancelled:
        return EXIT_CANCELLED
    return EXIT_OK if failed < len(sweep.rows) else EXIT_FAILED


# ---------------------------------------------------------------------------------------- validate


def graph_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    return files


def cmd_validate(args: argparse.Namespace) -> int:
    from nodegraph.errors import GraphError
    from nodegraph.session import load

    files = graph_files(args.paths)
    if not files:
        print(f"no graph files found in {' '.join(args.paths)}", file=sys.stderr)
        return EXIT_BAD_GRAPH
    bad = 0
    for path in files:
        try:
            problems = load(path).validate()
        except GraphError as exc:
            problems = exc.problems
        if problems:
            bad += 1
            _print_problems(problems, f"{path}: ")
        else:
            print(f"ok  {path}")
    return EXIT_BAD_GRAPH if bad else EXIT_OK


# ------------------------------------------------------------------------------------------- nodes


def cmd_nodes(args: argparse.Namespace) -> int:
    from nodegraph.registry import default_registry

    registry = default_registry()
    if args.json:
        print(json.dumps(registry.catalogue_json(), indent=2))
        return EXIT_OK
    for category, specs in registry.by_category().items():
        if args.category and category != args.category:
            continue
        print(f"\n[{category}]")
        for spec in specs:
            flags = [f for f in ("learnable", "stochastic", "preview") if getattr(spec, f)]
            flags += ["trainer"] if spec.trainer is not None else []
            aka = f" (also {', '.join(spec.aliases)})" if spec.aliases else ""
            print(f"  {spec.name}{aka}" + (f"  [{', '.join(flags)}]" if flags else ""))
            summary = spec.doc.splitlines()[0] if spec.doc else ""
            print(f"      {summary}")
            if spec.inputs:
                print("      in:  " + ", ".join(f"{i.name}: {i.type}{'[]' if i.multiple else ''}"
                                             f"{'?' if i.optional else ''}" for i in spec.inputs))
            if spec.outputs:
                print("      out: " + ", ".join(f"{o.name}: {o.type}" for o in spec.outputs))
            if spec.params:
                print("      params: " + ", ".join(f"{p.name}={json.dumps(p.default)}" for p in spec.params))
    return EXIT_OK


# --------------------------------------------------------------------------------------------- fmt


def cmd_fmt(args: argparse.Namespace) -> int:
    from nodegraph.errors import GraphError
    from nodegraph.graph import load
    from nodegraph.layout import auto_layout

    changed = 0
    for path in graph_files(args.paths):
        try:
            graph = load(path)
        except GraphError as exc:
            _print_problems(exc.problems, f"{path}: ")
            return EXIT_BAD_GRAPH
        auto_layout(graph, only_missing=not args.relayout)
        text = graph.dumps()
        if text != path.read_text():
            changed += 1
            if args.check:
                print(f"would reformat {path}")
            else:
                graph.save(path)
                print(f"formatted {path}")
    return EXIT_FAILED if (args.check and changed) else EXIT_OK


# ------------------------------------------------------------------------------------------ export


def cmd_export(args: argparse.Namespace) -> int:
    """Write the graph as a standalone PyTorch3D script (stdout, or ``-o``); a refusal names the node."""
    from nodegraph.errors import GraphError
    from nodegraph.session import load

    try:
        script = load(args.graph).export(overrides=dict(args.set or []))
    except GraphError as exc:
        _print_problems(exc.problems, f"{args.graph}: ")
        return EXIT_BAD_GRAPH
    if args.output:
        Path(args.output).write_text(script)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(script)
    return EXIT_OK


# ------------------------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from nodegraph.server import serve

    serve(host=args.host, port=args.port, graph_path=args.graph, token=args.token, library_dir=args.library,
          out_root=args.out, debug=args.debug)
    return EXIT_OK


# -------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nodegraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph headless")
    run.add_argument("graph")
    run.add_argument("--out", default=None, help="folder for images, meshes, events.jsonl and manifest.json "
                                                 "(default: ~/.local/share/nodegraph/out/<graph name>)")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when present)")
    run.add_argument("--set", action="append", type=parse_override, metavar="NODE.PARAM=VALUE",
                     help="override a param (repeatable); VALUE is JSON, else a string")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--debug", action="store_true", help="show Python tracebacks")
    run.set_defaults(func=cmd_run)

    runs = sub.add_parser("runs", help="list recorded runs ([GRAPH]), or `runs show ID`, `runs rm ID...`")
    runs.add_argument("words", nargs="*", metavar="GRAPH | show ID | rm ID")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.set_defaults(func=cmd_runs)

    sweep = sub.add_parser("sweep", help="run a graph for many param variants as Ray tasks")
    sweep.add_argument("graph")
    sweep.add_argument("--grid", action="append", metavar="NODE.PARAM=V1,V2,...", help="values to try (repeatable)")
    sweep.add_argument("--random", type=int, default=0, metavar="N", help="N random draws from the --range's")
    sweep.add_argument("--range", action="append", metavar="NODE.PARAM=LO:HI[:log]", help="a range to draw from")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    sweep.add_argument("--metric", default=None, metavar="NODE.OUTPUT",
                       help="what ranks the trials (default: the first metric a trial reports)")
    sweep.add_argument("--mode", choices=["min", "max"], default="min")
    sweep.add_argument("--address", default=None,
                       help="a Ray cluster: auto or HOST:PORT (default: start a local one on loopback)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0)
    sweep.add_argument("--gpus-per-trial", type=float, default=0.0)
    sweep.add_argument("--max-concurrent", type=int, default=None, metavar="K")
    sweep.add_argument("--device", default=None, help="cpu, cuda or auto (each trial's device)")
    sweep.set_defaults(func=cmd_sweep)

    export = sub.add_parser("export", help="write a graph as a standalone PyTorch3D script")
    export.add_argument("graph")
    export.add_argument("-o", "--output", default=None, help="the script file (default: print it)")
    export.add_argument("--set", action="append", type=parse_override, metavar="NODE.PARAM=VALUE",
                        help="change a param first (repeatable): the script's default becomes VALUE (JSON)")
    export.set_defaults(func=cmd_export)

    validate = sub.add_parser("validate", help="check graph files (or every *.json in folders)")
    validate.add_argument("paths", nargs="+")
    validate.set_defaults(func=cmd_validate)

    nodes = sub.add_parser("nodes", help="print the node catalogue")
    nodes.add_argument("--json", action="store_true", help="full specs as JSON (what the editor reads)")
    nodes.add_argument("--category")
    nodes.set_defaults(func=cmd_nodes)

    fmt = sub.add_parser("fmt", help="rewrite graph files canonically; lay out nodes without a position")
    fmt.add_argument("paths", nargs="+")
    fmt.add_argument("--check", action="store_true", help="only report files that would change (exit 1)")
    fmt.add_argument("--relayout", action="store_true", help="place every node again, not only new ones")
    fmt.set_defaults(func=cmd_fmt)

    serve = sub.add_parser("serve", help="start the browser editor")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--graph", default=None, help="graph to open (default: graphs/render_textured_cow.json)")
    serve.add_argument("--token", default=None, help="access token (generated when --host is not local)")
    serve.add_argument("--library", default=None,
                       help="folder the editor opens and saves graphs in (default: NODEGRAPH_LIBRARY, else the "
                            "--graph's folder unless it is an example, else ~/.local/share/nodegraph/graphs)")
    serve.add_argument("--out", default=None,
                       help="runs write to OUT/<graph name> (default: ~/.local/share/nodegraph/out/<graph name>)")
    serve.add_argument("--debug", action="store_true", help="send Python tracebacks of failed nodes to the page")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # an unexpected failure: one line, unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"nodegraph: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED
