"""`genzoo ui`: a local web app over the library (optional: `pip install 'genzoo[ui]'`).

    genzoo ui --workspace ~/genzoo-work          # then open http://127.0.0.1:7860

It binds to loopback unless told otherwise, fetches nothing from the internet (no web fonts, no
analytics, never a share link) and keeps every file it reads or writes in the workspace.
"""

from genzoo.ui.server import serve
from genzoo.ui.workspace import Limits, Workspace

__all__ = ["Limits", "Workspace", "serve"]
