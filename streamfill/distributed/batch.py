"""Many clips, one task per clip (``streamfill batch``): the jobs (one output per input, names checked before
any work), one clip rendered exactly as ``process`` renders it (a failure is that clip's, the batch goes on),
and the local runs: one after another with one engine, or a pool of processes. On Ray:
``ray_backend.RayExecutor.clips``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamfill import build
from streamfill.config import Config
from streamfill.distributed.chunks import ChunkWorker, _one_line, absolute
from streamfill.errors import InputError


@dataclass(frozen=True)
class ClipJob:
    """One clip of a batch. Paths are absolute (workers on other machines have another working folder);
    ``label`` is the input as the user gave it, for the summary."""

    input: str
    output: str
    mask: str | None
    mask_options: build.MaskOptions | None = None
    label: str = ""


@dataclass
class ClipResult:
    input: str
    output: str
    frames: int = 0
    filled: int = 0
    seconds: float = 0.0
    status: str = "ok"
    reason: str = ""
    notes: list[str] = field(default_factory=list)  # what `process` says beside its summary (streams not copied)


def process_clip(job: ClipJob, config: Config, *, inpainter=None,
                 progress: Callable[[int, int | None], None] | None = None) -> ClipResult:
    """One clip of a batch, exactly as ``process`` renders it; a failure becomes ``status="failed"`` with a
    one-line reason (the batch goes on)."""
    from streamfill import api

    t0 = time.perf_counter()
    try:
        r = api.process(job.input, job.output, mask=job.mask, config=config, progress=progress,
                        mask_options=job.mask_options, inpainter=inpainter)
    except Exception as exc:  # noqa: BLE001 - one clip's failure is reported, the batch goes on
        return ClipResult(job.label or job.input, job.output, seconds=time.perf_counter() - t0, status="failed",
                          reason=_one_line(exc))
    return ClipResult(job.label or job.input, r.output, frames=r.frames, filled=r.filled, seconds=r.seconds,
                      notes=r.output_notes)


def batch_jobs(inputs: list[str], out_dir: str | Path, *, mask: str | None, config: Config,
               mask_options: build.MaskOptions | None = None) -> list[ClipJob]:
    """One job per input: ``out_dir/<name>`` (``.mkv`` with ``--lossless``, else the input's suffix when it is
    .mp4/.mov/.mkv, else .mp4). Two inputs with the same output name are refused before any work."""
    out = Path(out_dir)
    if not inputs:
        raise InputError("give at least one input clip")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out-dir {out} is a file")
    jobs, seen = [], {}
    for src in inputs:
        p = Path(src)
        if p.is_dir():
            raise InputError(f"{src} is a folder: batch takes video files (an image sequence: process --fps)")
        suffix = ".mkv" if config.io.lossless else (p.suffix.lower() if p.suffix.lower() in (".mp4", ".mov", ".mkv")
                                                      else ".mp4")
        target = out / f"{p.stem}{suffix}"
        if target in seen:
            same = Path(absolute(src)) == Path(absolute(seen[target]))
            raise InputError(f"{src} is given twice" if same else
                             f"{src} and {seen[target]} would both be written to {target}; rename one")
        seen[target] = src
        jobs.append(ClipJob(absolute(src), absolute(target), absolute(mask), mask_options, label=str(src)))
    # made once every input is known to be fine (a refused batch left an empty --out-dir behind)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out-dir {out}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out-dir {out} is not writable")
    return jobs


def _ignore(signum, frame) -> None:
    pass


def _quiet_on_signals() -> None:
    """In a batch worker process: Ctrl-C or SIGTERM (Ctrl-C reaches the whole process group; an interrupted
    parent sends SIGTERM) end it as SystemExit, which runs its clean-up (the partial output is removed) and
    prints no traceback; the parent says "interrupted"."""
    def stop(signum, frame):
        # once: Ctrl-C and the parent's SIGTERM both arrive, and a second one would cut the clean-up short
        # (a handler that does nothing: SIG_IGN made Python print "Signal 15 ignored due to race condition")
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGTERM, _ignore)
        raise SystemExit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _pool_clip(render: Callable[..., ClipResult], job: ClipJob, config: Config) -> ClipResult:
    """``render`` (``process_clip``) in a pool process. Interrupted, the process ends once the clip's clean-up
    has run: the pool would catch the SystemExit, report it as the clip's result and start the next clip."""
    try:
        return render(job, config)
    except SystemExit:
        os._exit(130)


def run_batch_local(jobs: list[ClipJob], config: Config, *, jobs_parallel: int = 1,
                    on_result: Callable[[ClipResult], None] | None = None,
                    progress: Callable[[int, int | None], None] | None = None,
                    render: Callable[..., ClipResult] = process_clip) -> list[ClipResult]:
    """Run a batch on this machine: one clip after another with one engine (``jobs_parallel`` = 1), or in a
    pool of ``jobs_parallel`` processes (each loads its own engine). ``render`` renders one clip
    (``process_clip``; for a pool, a module-level function: the workers import it by name)."""
    results: list[ClipResult] = []
    if jobs_parallel <= 1:
        worker = ChunkWorker(config)
        done = 0
        for job in jobs:
            def tick(d, t, base=done):
                if progress is not None:
                    progress(base + d, None)
            r = render(job, config, inpainter=worker.inpainter, progress=tick)
            done += r.frames
            results.append(r)
            if on_result is not None:
                on_result(r)
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
    from concurrent.futures.process import BrokenProcessPool

    # Workers are started fresh ("spawn"), never forked: a fork copies this process's locks but not the threads
    # that hold them (torch's and OpenCV's thread pools, a host's ZeroMQ or logging thread), and a worker that
    # then needs such a lock waits forever -- the whole batch with it (most likely why the batch test once hung in CI).
    spawn = multiprocessing.get_context("spawn")

    def pool(workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=spawn, initializer=_quiet_on_signals)

    def portable(job: ClipJob) -> ClipJob:  # a callback cannot cross into another process: warnings go to `warnings`
        mo = job.mask_options
        return job if mo is None else dataclasses.replace(job, mask_options=dataclasses.replace(mo, on_warning=None))

    by_input: dict[int, ClipResult] = {}

    def record(r: ClipResult, job: ClipJob) -> None:
        by_input[id(job)] = r
        if on_result is not None:
            on_result(r)

    # A worker process that dies (killed, out of memory, a crash in native code) breaks the whole pool: every
    # clip in it fails with BrokenProcessPool. The clips not done then run again, each in a pool of its own
    # (``jobs_parallel`` such pools at a time), so that only the clip whose worker dies again fails.
    pools: list = []
    try:
        shared = pool(jobs_parallel)
        pools.append(shared)
        futures = {shared.submit(_pool_clip, render, portable(job), config): job for job in jobs}
        again: list[ClipJob] = []
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                record(fut.result(), job)
            except BrokenProcessPool:
                again.append(job)
            except Exception as exc:  # noqa: BLE001 - the clip failed
                record(ClipResult(job.label or job.input, job.output, status="failed", reason=_one_line(exc)), job)
        shared.shutdown(wait=True)
        running: dict = {}
        retried = {id(j) for j in again}
        waiting = [j for j in jobs if id(j) in retried]  # in the batch's order
        while waiting or running:
            while waiting and len(running) < jobs_parallel:
                job = waiting.pop(0)
                alone = pool(1)
                pools.append(alone)
                running[alone.submit(_pool_clip, render, portable(job), config)] = (job, alone)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                job, alone = running.pop(fut)
                try:
                    r = fut.result()
                except BrokenProcessPool:
                    r = ClipResult(job.label or job.input, job.output, status="failed",
                                   reason="its worker process died (killed, out of memory, or a crash)")
                except Exception as exc:  # noqa: BLE001
                    r = ClipResult(job.label or job.input, job.output, status="failed", reason=_one_line(exc))
                record(r, job)
                alone.shutdown(wait=True)
    except BaseException:
        # Interrupted (Ctrl-C, or SIGTERM to this process alone): waiting for the pool, as leaving a `with` block
        # does, rendered every clip still queued. Queued clips are dropped and the workers told to stop (each
        # removes its partial output and exits).
        for p in pools:
            for proc in list((getattr(p, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    proc.terminate()
        for p in pools:
            p.shutdown(wait=True, cancel_futures=True)
        raise
    return [by_input[id(j)] for j in jobs]
