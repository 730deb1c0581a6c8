"""The node library, one module per palette category. Installed, it is ``nodegraph.nodes``.

``MODULES`` is the library's own list of node modules: :meth:`nodegraph.registry.Registry.load_library`
registers the nodes each of them declares. Each module holds one palette category and is named after it (every
node in ``rendering.py`` has ``category="rendering"``). Helpers shared by several families live in the modules
whose names start with ``_`` (``_common``, ``_rays``, ``_smpl``), which declare no nodes and are not listed.
"""

MODULES = ("body", "cameras", "datasets", "images", "implicit", "io", "learnable", "lights", "losses", "meshes",
           "metrics", "points", "preview", "raymarching", "raysampling", "rendering", "save", "surfaces", "training",
           "transforms", "volumes")
