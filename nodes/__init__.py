"""The node library, one module per palette category. Installed, it is ``nodegraph.nodes``.

``MODULES`` is the library's own list of node modules: :meth:`nodegraph.registry.Registry.load_library`
registers the nodes each of them declares (helper modules, whose names start with ``_``, are not listed).
"""

MODULES = ("body", "cameras", "datasets", "fitting", "images", "implicit", "io", "learnable", "lights", "losses",
           "meshes", "metrics", "optimize", "points", "primitives", "raymarching", "raysampling", "save",
           "transforms", "volumes")
