"""``python -m nodegraph.server [--host H] [--port P] [--graph G] [--token T] [--library DIR] [--out DIR]``: the editor without the CLI."""
import argparse

from nodegraph.server import serve

parser = argparse.ArgumentParser(prog="python -m nodegraph.server")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--graph", default=None)
parser.add_argument("--token", default=None)
parser.add_argument("--library", default=None)
parser.add_argument("--out", default=None, help="runs write to OUT/<graph name> (default ~/.local/share/nodegraph/out)")
parser.add_argument("--debug", action="store_true", help="send Python tracebacks of failed nodes to the page")
args = parser.parse_args()
serve(args.host, args.port, args.graph, args.token, args.library, out_root=args.out, debug=args.debug)
