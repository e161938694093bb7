"""Files genzoo writes get the permissions of any file the process creates: 0o666 minus the umask.

safetensors and `tempfile.mkstemp` create their files with mode 0600, so a run written by one
user would be unreadable to the group that shares it; `use_umask` restores the usual mode.
"""

from __future__ import annotations

import os
from pathlib import Path

from genzoo.errors import GenzooError


def umask() -> int:
    """The process's umask, read without changing it where Linux allows (other threads may be creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def use_umask(path: str | Path) -> None:
    """Give `path` the mode `open()` would have given a new file: 0o666 masked by the umask."""
    os.chmod(path, 0o666 & ~umask())


def check_writable(path: Path, what: str) -> None:
    """Refuse an output path that cannot be created, before any work: one under a file, or in a
    folder this user may not write (root passes `os.access`; its writes still fail, and say so)."""
    existing = next(p for p in [path, *path.parents] if p.exists() or p == Path(p.anchor or "."))
    if existing != path and not existing.is_dir():
        raise GenzooError(f"{what} '{path}' is under '{existing}', which is a file; choose another path")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK):
        raise GenzooError(f"{what} '{path}' cannot be written: '{folder}' is read-only; choose another path")


def read_utf8(path: Path, what: str = "", fix: str = "save it as UTF-8") -> str:
    """A text file's content, or one line naming the file (`what` before it), the problem and `fix`."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise GenzooError(f"{what}'{path}' is not UTF-8 text (byte {err.start}); {fix}") from None
    except OSError as err:
        raise GenzooError(f"cannot read {what}'{path}' ({err.strerror})") from None
