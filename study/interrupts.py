"""Ctrl-C while a study is being set up, taken at safe points.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. During the
driver's set-up that can be inside ``ray.init`` (the driver then died with SIGSEGV at exit)
or between a library's taking and releasing of a lock: a Ctrl-C that landed in a logging
call left ``logging``'s module lock held, and the raw-pixel floor's thread, importing torch,
waited on it for ever, so the driver never ended.  Until Tune's loop starts, the driver
therefore only notes a Ctrl-C (one line on stderr) and raises ``KeyboardInterrupt`` at its
next :meth:`DeferredCtrlC.check`, between steps; a second Ctrl-C raises at once, for a step
that hangs.  From :meth:`DeferredCtrlC.release` on, Ctrl-C is Python's again, and Tune's
loop handles it as Tune does (a graceful stop; a second Ctrl-C skips it); after the loop,
:meth:`DeferredCtrlC.restore` takes it back from Tune.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

NOTICE = b"Ctrl-C: stopping after this step (Ctrl-C again to stop at once)\n"


class DeferredCtrlC:
    """``with DeferredCtrlC() as ctrl_c: ... ctrl_c.check() ...``: SIGINT sets a flag that
    ``check`` raises as ``KeyboardInterrupt``.  It changes nothing where SIGINT is not
    Python's default handler (ignored, as for a job started with ``&`` by a shell, or
    handled by the caller) or outside the main thread."""

    def __init__(self) -> None:
        self.pending = False
        self._original: object = None  # SIGINT's handler before (None: not the main thread)
        self._installed = False

    def __enter__(self) -> DeferredCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._original = signal.getsignal(signal.SIGINT)
            if self._original is signal.default_int_handler:
                signal.signal(signal.SIGINT, self._on_sigint)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        os.write(2, NOTICE)  # not print: the main thread may be inside a print

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a Ctrl-C came since the set-up began."""
        if self.pending:
            raise KeyboardInterrupt

    def release(self) -> None:
        """Give SIGINT back to the handler it had before (Python's: ``KeyboardInterrupt``
        at once)."""
        if self._installed:
            signal.signal(signal.SIGINT, self._original)
            self._installed = False

    def restore(self) -> None:
        """After Tune's loop: give SIGINT back to the handler it had before the study.  Ray
        2.60's loop puts back the handler it replaced only when it catches a Ctrl-C; after
        a loop without one its handler stays, and the first Ctrl-C while the study waits
        for its last judgements did nothing."""
        self.release()
        if self._original is not None:
            signal.signal(signal.SIGINT, self._original)
