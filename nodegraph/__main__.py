"""``python -m nodegraph``: see nodegraph.cli."""
import sys

from nodegraph.cli import main

sys.exit(main())
