"""The folder the web UI works in, and the limits that let a shared machine survive it.

Everything the UI reads or writes lies under one root: `data/` (uploads), `runs/` (training runs),
`outputs/` (samples and application results), `reports/` (compare), `logs/` (the output of each
training or compare process). Every name that comes from a browser passes `safe_name`, and every
path is checked by `inside`, so an uploaded `../../x` or a symlink cannot reach out of the root.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from genzoo.data import dataset_names, load_dataset
from genzoo.errors import GenzooError

FOLDERS = ("data", "runs", "outputs", "reports", "logs")
# What an upload may be: an archive of a folder (images, WAVs, MIDI files), or one file a loader reads.
UPLOAD_SUFFIXES = (".zip", ".csv", ".tsv", ".txt", ".wav", ".mid", ".midi", ".mat", ".gz")
FOLDER_FILES = (
    ".wav",
    ".mid",
    ".midi",
)  # a single one becomes a folder of one, as their loaders read folders
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass(frozen=True)
class Limits:
    """What one UI server accepts; every value is a flag of `genzoo ui`."""

    upload_bytes: int = 100 * 2**20  # one uploaded file
    unpacked_bytes: int = 500 * 2**20  # an archive's contents, unpacked
    archive_members: int = 20_000
    samples_per_request: int = 256
    concurrency: int = 2  # requests computed at once; the rest wait in line
    waiting_requests: int = 64  # requests waiting at once; beyond, "busy, try again"
    waiting_jobs: int = 8  # training or compare jobs queued behind the running one


def safe_name(text: str, what: str = "name") -> str:
    """`text` if it is a plain file or folder name (letters, digits, '.', '_', '-'), else a GenzooError."""
    text = (text or "").strip()
    if not _NAME.fullmatch(text) or ".." in text:
        raise GenzooError(
            f"{what} '{text[:80]}' is not allowed: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


class Workspace:
    """The UI's root folder, made if missing, with its sub-folders."""

    def __init__(self, root: str | Path, limits: Limits | None = None):
        self.root = Path(root).expanduser().resolve()
        self.limits = limits or Limits()
        if self.root.exists() and not self.root.is_dir():
            raise GenzooError(f"--workspace '{root}' is a file; give a folder (it is made if missing)")
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def inside(self, path: str | Path) -> Path:
        """`path` resolved (symlinks followed), if it lies in the workspace; else a GenzooError."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise GenzooError(f"'{path}' is outside the workspace {self.root}")
        return resolved

    def folder(self, kind: str, name: str) -> Path:
        """The path of `name` in one of the workspace's folders ('runs', 'outputs', ...)."""
        return self.inside(self.root / kind / safe_name(name, f"{kind[:-1]} name"))

    # Data ---------------------------------------------------------------------------------------

    def data_choices(self) -> list[str]:
        """The registered dataset names, then the uploads (as `upload:NAME`)."""
        uploads = sorted(p.name for p in (self.root / "data").iterdir() if not p.name.startswith("."))
        return [*dataset_names(), *(f"upload:{name}" for name in uploads)]

    def data_source(self, choice: str) -> str:
        """What `genzoo.train` and the applications take for a choice: a name, or the upload's path."""
        if choice.startswith("upload:"):
            path = self.folder("data", choice.removeprefix("upload:"))
            if not path.exists():
                raise GenzooError(f"upload '{choice}' is gone; upload it again")
            return str(path)
        if choice not in dataset_names():
            raise GenzooError(f"unknown dataset '{choice}'; pick one from the list or upload a file")
        return choice

    def add_upload(self, source: str | Path, original_name: str) -> str:
        """Copy (or unpack) an uploaded file into data/, check that a loader reads it, and return
        its choice name; anything unreadable is removed again and reported as a GenzooError."""
        source = Path(source)
        name = safe_name(Path(original_name or "").name, "uploaded file name")
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise GenzooError(
                f"'{name}' is not a file genzoo reads here; upload one of: {', '.join(UPLOAD_SUFFIXES)} "
                "(a .zip of a folder of images, WAVs or MIDI files)"
            )
        size = source.stat().st_size
        if size == 0:
            raise GenzooError(f"'{name}' is empty")
        if size > self.limits.upload_bytes:
            raise GenzooError(
                f"'{name}' is {_size(size)}; this server takes uploads up to {_size(self.limits.upload_bytes)}"
            )
        stem = safe_name(Path(name).stem or "upload", "uploaded file name")
        target = self.folder("data", stem if suffix in (".zip", *FOLDER_FILES) else name)
        if target.exists():
            raise GenzooError(f"an upload named '{target.name}' exists already; rename the file or delete it")
        try:
            if suffix == ".zip":
                self._unpack(source, target)
            elif suffix in FOLDER_FILES:
                target.mkdir()
                shutil.copyfile(source, target / name)
            else:
                shutil.copyfile(source, target)
            load_dataset(target)  # the same check `genzoo train --data PATH` makes
        except GenzooError as err:
            _remove(target)
            said = str(err).replace(str(target), name)  # the user's name for the file, not the server's path
            raise GenzooError(said if name in said else f"'{name}': {said}") from None
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            _remove(target)
            raise GenzooError(f"'{name}' could not be read ({err}); check the file") from None
        return f"upload:{target.name}"

    def _unpack(self, archive: Path, target: Path) -> None:
        """Unpack a zip into `target`, refusing links, absolute or escaping names, and bombs."""
        limits = self.limits
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if not members:
                raise GenzooError(f"'{archive.name}' holds no files")
            if len(members) > limits.archive_members:
                raise GenzooError(
                    f"the archive holds {len(members)} files; the limit is {limits.archive_members}"
                )
            if sum(m.file_size for m in members) > limits.unpacked_bytes:
                raise GenzooError(
                    f"the archive unpacks to more than {_size(limits.unpacked_bytes)}, this server's limit"
                )
            with tempfile.TemporaryDirectory(dir=self.root / "data", prefix=".unpack-") as scratch:
                for member in members:
                    parts = PurePosixPath(member.filename.replace("\\", "/")).parts
                    if stat.S_ISLNK(member.external_attr >> 16):
                        raise GenzooError(
                            f"the archive holds a link ('{member.filename}'); upload plain files"
                        )
                    if not parts or parts[0] == "/" or ".." in parts or ":" in parts[0]:
                        raise GenzooError(f"the archive holds a path outside itself: '{member.filename}'")
                    if parts[0] == "__MACOSX" or parts[-1].startswith("."):
                        continue  # Finder's resource forks and hidden files are not data
                    destination = Path(scratch, *parts)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(member) as read, open(destination, "wb") as write:
                        shutil.copyfileobj(read, write)
                # A zip of one folder: its content is the data set.
                entries = list(Path(scratch).iterdir())
                top = entries[0] if len(entries) == 1 and entries[0].is_dir() else Path(scratch)
                shutil.move(str(top), target)

    def delete_upload(self, choice: str) -> None:
        _remove(self.folder("data", choice.removeprefix("upload:")))

    # Runs ---------------------------------------------------------------------------------------

    def run_names(self) -> list[str]:
        """Run folders that hold a run (run.json), newest first."""
        runs = [p for p in (self.root / "runs").iterdir() if (p / "run.json").is_file()]
        return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.0f} KiB"
