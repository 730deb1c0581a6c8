"""The editor as one NiceGUI element: the Vue component in frontend/src/editor.js and the modules it imports."""
from __future__ import annotations

from nicegui import ui

from nodegraph.paths import FRONTEND_DIR as FRONTEND


class Editor(ui.element, component=str(FRONTEND / "src" / "editor.js"),
             esm={"@vue-flow/core": str(FRONTEND / "vendor" / "vue-flow-core"),
                  "@vue-flow/minimap": str(FRONTEND / "vendor" / "vue-flow-minimap"),
                  "nodegraph-ui": str(FRONTEND / "src")}):
    """The whole editor: toolbar, palette, canvas, inspector and previews, in the browser.

    Nothing secret is in its props (they are in the page's HTML): the access token travels as the HttpOnly
    cookie set when the printed URL is opened, the CSRF secret is fetched from ``/api/session`` by api.js."""
