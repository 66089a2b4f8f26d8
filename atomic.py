"""Writing files: atomically (whole or not at all), and never over an existing one unless asked."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``.

    A crash or exception (even a kill during the write) never leaves a partial file at ``path``: the
    file there is the old one or the new one, whole. The temporary file is removed on errors (a
    process killed outright leaves it behind, hidden: ``.NAME.*.tmp``). The data reaches the disk
    (fsync) before the rename, and the rename before returning, so a power cut cannot leave an empty
    file either. Creates the parent folder. The file gets the permissions any program's new file gets
    (0666 less the umask: 0644 under 022), not mkstemp's private 0600. Returns ``path``.
    """
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path):
    """Make a rename in ``folder`` durable (where the platform allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, str]:
    """A new hidden temporary file in ``path``'s folder (created if missing), to be renamed onto
    ``path`` when complete: (open descriptor, its path). Its permissions are those of any new file
    (0666 less the umask), not mkstemp's private 0600, so the finished file has them too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_existing(paths, overwrite: bool = False) -> None:
    """The project's one overwrite policy (render.py, generate_dance.py, export.py): an output file that
    already exists is an error unless ``overwrite``, checked before any work, so nothing is written.
    Raises FileExistsError naming the first such file and the option that allows replacing it."""
    if overwrite:
        return
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}: exists{more}; pass --overwrite to replace it")
