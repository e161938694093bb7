"""Chromium for the browser tests: Debian's package that `make chromium` unpacks into .venv/chromium
(tests/install_chromium.sh), installed on first use if missing; a test skips only when Chromium truly
cannot be installed here (no apt-get, no mirror), saying why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".venv" / "chromium" / "chromium"
INSTALL = REPO / "tests" / "install_chromium.sh"
ARTIFACTS = REPO / "test-artifacts"  # screenshots the browser tests leave behind (git-ignored)


def find_chromium() -> tuple[str | None, str]:
    """The browser's path, or None and why not."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path, ""
    if not LOCAL.is_file():
        done = subprocess.run(["sh", str(INSTALL), str(LOCAL.parent)], capture_output=True, text=True)
        if not LOCAL.is_file():
            return None, f"Chromium could not be installed by {INSTALL.name}: {done.stderr.strip()[-300:]}"
    return str(LOCAL), ""
