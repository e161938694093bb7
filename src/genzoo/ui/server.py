"""Start the web UI: Gradio, configured to stay offline, on loopback, inside the workspace."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from genzoo.errors import GenzooError
from genzoo.train.lock import RunLock
from genzoo.ui.workspace import Limits, Workspace

FONTS = ["system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]  # local fonts only
MONO = ["ui-monospace", "Consolas", "monospace"]


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    workspace: str | Path = "genzoo-workspace",
    limits: Limits | None = None,
    device: str = "auto",
) -> None:
    """Serve the UI until interrupted. One server per workspace (a lock file says which holds it),
    so its one-training-at-a-time queue is the workspace's."""
    if not 0 < port < 65536:
        raise GenzooError(f"--port must be 1-65535, got {port}")
    ws = Workspace(workspace, limits)
    # Before Gradio is imported: its cache of uploads and outputs lives in the workspace, and it
    # must never phone home (usage analytics, version checks).
    os.environ["GRADIO_TEMP_DIR"] = str(ws.root / ".cache")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio as gr
    except ImportError:
        raise GenzooError("the web UI needs Gradio: pip install 'genzoo[ui]'") from None
    from genzoo.ui.app import build_app
    from genzoo.ui.jobs import JobQueue

    if not _is_loopback(host):
        print(f"genzoo: serving on {host}: anyone who can reach this machine can use the UI", file=sys.stderr)
    with RunLock(ws.root, flag="--workspace"):
        jobs = JobQueue(ws, device=device)
        app = build_app(ws, jobs)
        app.queue(default_concurrency_limit=ws.limits.concurrency, max_size=ws.limits.waiting_requests)
        try:
            app.launch(
                server_name=host,
                server_port=port,
                share=False,
                inbrowser=False,
                max_file_size=ws.limits.upload_bytes,
                allowed_paths=[str(ws.root / "reports")],
                ssr_mode=False,
                mcp_server=False,
                show_error=False,  # every message a user should see is raised as gr.Error already
                theme=gr.themes.Default(font=FONTS, font_mono=MONO),
            )
        except OSError as err:
            raise GenzooError(
                f"cannot serve on {host}:{port} ({err.strerror or err}); try another --port"
            ) from None
        finally:
            jobs.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
