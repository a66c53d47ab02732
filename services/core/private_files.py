"""FLOWKEEPER_HOME is private: the embedded Redis' data (runs, events, stored notifiers),
the secret key, cached task results and logs are for the user who runs flowkeeper.

Folders are created 0700 and files 0600, whatever the umask; a folder that an older
version created 0755 is narrowed when it is next used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# what a server started for the installation creates (append-only file, pid, log)
PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """`path` as a folder of mode 0700; the parents it lacked are created 0700 too (they
    are flowkeeper's), the ones that existed are left alone."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            pass
        os.chmod(folder, PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def make_private(path: Path) -> None:
    """Narrow an existing file to 0600 (or a folder to 0700); nothing when it is gone."""
    try:
        os.chmod(path, PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def open_private(path: Path, mode: str = "wb") -> IO:
    """`path` opened for writing ("wb", "w", "ab", "a"), created 0600 (or narrowed)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    descriptor = os.open(path, flags, PRIVATE_FILE_MODE)
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    return os.fdopen(descriptor, mode)
