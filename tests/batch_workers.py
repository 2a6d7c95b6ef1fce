"""Stand-ins for ``process_clip`` that batch pool workers run (``run_batch_local(render=...)``). The workers are
spawned, not forked, so a stand-in must live in a module they can import by name: this one."""

from __future__ import annotations

import os
import signal
import threading
import time

from streamfill.distributed.batch import ClipResult


def killed_on_bad(job, config, **kw) -> ClipResult:
    """A clip named ``bad.mp4`` kills its worker outright (SIGKILL: as the out-of-memory killer does); any other
    clip takes 0.2 s and renders 3 frames."""
    if job.input.endswith("bad.mp4"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return ClipResult(job.input, job.output, frames=3)


LOCK = threading.Lock()


def needs_the_lock(job, config, **kw) -> ClipResult:
    """Takes ``LOCK`` (as a worker takes a logging, stream or thread-pool lock): a worker forked while another
    thread of the parent held it would wait forever; here it gives up after 5 s and fails the clip."""
    if not LOCK.acquire(timeout=5):
        raise RuntimeError("LOCK is held: this worker was forked while a parent thread held it")
    LOCK.release()
    return ClipResult(job.input, job.output, frames=1)
