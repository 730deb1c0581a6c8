"""The node library: one module per family. Every module here is imported by nodegraph.registry."""
