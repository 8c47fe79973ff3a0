"""What a command does when the reader of its stdout goes away (``doit status | head -2``,
``pod-tasks cat NAME | head -c 10``): it goes quiet, never a traceback.

- `write` is how pod-tasks prints: at the first write that finds the reader gone,
  stdout (and stderr, when it is the same pipe: ``2>&1 | head``) is pointed at the null
  device, so nothing written later, nor Python's own flush at exit, complains again.
  The caller goes on as if it had printed: a run of doit tasks does all it was asked (a
  fetch still fetches everything, verified), only unseen.
- `reader_gone` tells such an error from any other failure to write.
- `CLOSED` is the exit code of a command whose output was its work (``pod-tasks cat``)
  and could not all be delivered: 141, as shells report a writer ended by SIGPIPE.
- While doit loads the tasks, `end_on_closed_pipe` gives SIGPIPE its default action, so
  that doit's own commands (``doit list | head -1``, ``help``, ``info``), which print
  without us, end as any Unix tool does (exit 141, silently); a run of tasks takes it
  back with `quiet_on_closed_pipe` before anything runs, and goes quiet instead.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from pathlib import Path

__all__ = ["write", "reader_gone", "silence", "CLOSED", "end_on_closed_pipe", "quiet_on_closed_pipe"]

#: The exit code of a command stopped because its stdout closed (128 + SIGPIPE).
CLOSED = 141


def reader_gone(exc: BaseException) -> bool:
    """``exc``, raised by a write to stdout, says that its reader went away (EPIPE; on
    Windows a closed pipe may also read as EINVAL)."""
    return isinstance(exc, BrokenPipeError) or (
        os.name == "nt" and isinstance(exc, OSError) and exc.errno == errno.EINVAL)


def silence() -> None:
    """The reader of stdout went away: send stdout from now on, and stderr when it is
    the same pipe, to the null device (the file descriptors themselves, so that every
    stream and Python's last flush at exit write there)."""
    stdout = sys.__stdout__
    if stdout is None:
        return
    out = stdout.fileno()
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        if sys.__stderr__ is not None and _same_file(out, sys.__stderr__.fileno()):
            os.dup2(null, sys.__stderr__.fileno())
        os.dup2(null, out)
    finally:
        os.close(null)


def _same_file(one: int, other: int) -> bool:
    try:
        return os.path.samestat(os.fstat(one), os.fstat(other))
    except OSError:
        return False


def write(text: str, stream=None) -> None:
    """Write ``text`` to ``stream`` (default: stdout) and flush it; once the reader has
    gone (`silence`), quietly write nothing."""
    stream = sys.stdout if stream is None else stream
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        if not reader_gone(exc):
            raise
        silence()


def _sigpipe(action) -> None:
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, action)


def end_on_closed_pipe() -> None:
    """A write to a closed stdout ends the process at once, exit code 141 (SIGPIPE's
    default action; POSIX only). For the commands that only print, and only in doit's own
    command (``doit``, ``python -m doit``, ``pod-tasks TASK``): a process that loads the
    tasks another way (a test, a program using doit's API) keeps its own setting, since
    with the default action any closed socket it writes to would end it."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if program.name == "doit" or program.parent.name == "doit":
        _sigpipe(signal.SIG_DFL)


def quiet_on_closed_pipe() -> None:
    """A write to a closed stdout raises, for `write` to go quiet (Python's own setting)."""
    _sigpipe(signal.SIG_IGN)
