"""Temporary siblings of outputs that name their owner, so that the ones a
killed run leaves behind can be recognized and removed by the next run.

An output (a ledger folder, an intensity file) is written under a hidden
temporary name beside its final path and renamed into place when whole, so a
reader never sees half of it. A run killed with SIGKILL (or by a power cut of
the machine, an OOM kill) cannot remove its temporary, so the name says whose
it is::

    .carbonledger-tmp.<pid>.<start>.<host>.<random>.<final name>

``pid`` and ``start`` (the process start time in clock ticks since boot,
``/proc/<pid>/stat`` field 22; ``0`` where there is no ``/proc``) identify
the owning process even after its pid is reused; ``host`` (a hash of the host
name) keeps a run from judging temporaries that a run on another machine
writes into a shared folder. ``remove_stale`` deletes only temporaries of
this host whose owner is gone: a live concurrent run's temporary is never
touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from functools import cache
from pathlib import Path

MARKER = ".carbonledger-tmp"
_NAME = re.compile(
    r"^\.carbonledger-tmp\.(?P<pid>\d+)\.(?P<start>\d+)\.(?P<host>[0-9a-f]{8})\."
    r"(?P<rand>[A-Za-z0-9_]+)\.(?P<final>.+)$"
)


@cache
def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process from ``/proc``;
    ``None`` where it cannot be read (no such process, or no ``/proc``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the
    # fields after it follow the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _start_time(pid: int) -> int:
    stat = _stat(pid)
    return stat[1] if stat is not None else 0


def owner_alive(pid: int, start: int) -> bool:
    """Whether the process that created a temporary (``pid`` started at
    ``start``) still runs. When in doubt, alive: a stale temporary left in
    place costs disk space, removing a live one would break a run."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return True
    stat = _stat(pid)
    if stat is None:
        return True  # no /proc: the pid exists, trust it
    state, started = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped: it writes nothing more
    # A different start time: the owner died and its pid was reused.
    return start == 0 or started == start


def temp_path(final: Path, *, folder: bool) -> Path:
    """A new temporary sibling of ``final``, named for this process: a
    folder, created (private, as ``mkdtemp`` makes it), or, when ``folder``
    is false, a fresh name for the writer to create the file under (so the
    file gets the usual permissions, not ``mkstemp``'s owner-only ones)."""
    prefix = f"{MARKER}.{os.getpid()}.{_start_time(os.getpid())}.{_host()}."
    suffix = f".{final.name}"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=final.parent))
    return final.parent / f"{prefix}{secrets.token_hex(8)}{suffix}"


def remove_stale(parent: Path) -> list[Path]:
    """Remove the temporaries in ``parent`` that a dead process of this host
    left behind (folders and files); returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed  # no such folder yet: nothing stale in it
    for entry in entries:
        m = _NAME.match(entry.name)
        if m is None or m["host"] != _host():
            continue
        if owner_alive(int(m["pid"]), int(m["start"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # another run removed it first
        removed.append(path)
    return removed
