"""Ray execution of chunks and clips: the only module of streamfill that imports ``ray`` (an optional extra,
``pip install 'streamfill[ray]'``; imported inside functions, so ``import streamfill.distributed`` works
without it).

Workers are Ray actors (:class:`_Worker`) that load the engine once and then render chunk after chunk (or
clip after clip); each asks for ``cpus_per_worker`` CPUs and, when the cluster has GPUs and the engine is
neural, ``gpus_per_worker`` GPUs (fractions allowed: 0.5 puts two workers on one GPU). Chunks travel as
descriptions (``chunks.Chunk``); workers decode their own frames from the shared input path.

Failures: a chunk whose task raised, or whose worker died (node lost), is given to another worker once; a
second failure fails the run with one line naming the chunk and its frames. A lost worker is not given more
work. Progress: every worker reports its frames to one small actor that the driver polls.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Callable

from streamfill.config import Config
from streamfill.distributed.batch import ClipJob, ClipResult, process_clip
from streamfill.distributed.chunks import Chunk, ChunkResult, ChunkWorker
from streamfill.errors import DistributedError, StreamfillError

CONNECT_TIMEOUT = 20.0  # seconds a --ray address gets to answer
POLL = 0.25             # seconds between progress polls while waiting for results
TRIES = 2               # attempts per chunk (or clip, when its worker is lost)


def _ray():
    try:
        import ray
    except ImportError:
        raise DistributedError("--ray needs Ray on this machine: pip install 'streamfill[ray]'") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    a = address.split("://", 1)[-1]
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of the head, ``ray://HOST:PORT`` for Ray Client,
    ``auto`` for the cluster started on this machine with ``ray start``, ``local`` for a private one-machine
    Ray). A wrong address fails within ``timeout`` seconds with DistributedError (one line), never hangs."""
    t0 = time.monotonic()
    ray = _ray()
    if ray.is_initialized():
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
              "configure_logging": True}
    if address == "local":
        target = None
    else:
        target = address
        hp = _host_port(address)
        if hp is None and address != "auto":
            raise DistributedError(f"--ray {address}: expected HOST:PORT, ray://HOST:PORT, auto or local")
        if hp is not None:
            try:
                socket.create_connection(hp, timeout=min(timeout / 2, 5.0)).close()
            except OSError as exc:
                raise DistributedError(f"no Ray cluster at {address}: {exc.strerror or exc}") from None
    if target is not None:
        _probe(target, max(1.0, timeout - (time.monotonic() - t0)))
    try:
        ray.init(address=target, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises several types (ConnectionError, RuntimeError, ...)
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DistributedError(f"cannot join the Ray cluster at {address}: {text}") from None


_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print("ok", flush=True)
ray.shutdown()
"""


def _probe(address: str, timeout: float) -> None:
    """Try ``ray.init(address)`` in a child process first: Ray's client retries for minutes, and logs from
    background threads, at an address that accepts connections but is not a Ray head. A child can be
    killed at ``timeout`` and its output discarded, so a wrong address is one line and no hang."""
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DistributedError(f"no Ray cluster answered at {address} within {timeout:.0f} s") from None
    if proc.returncode != 0 or "ok" not in proc.stdout:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1].strip()[:200] if lines else f"exit status {proc.returncode}"
        raise DistributedError(f"cannot join the Ray cluster at {address}: {last}")


def shutdown() -> None:
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


class _Progress:
    """Frames done per task key (a retry overwrites its chunk's count)."""

    def __init__(self) -> None:
        self.done: dict = {}

    def set(self, key, n: int) -> None:
        self.done[key] = n

    def total(self) -> int:
        return sum(self.done.values())


class _Worker:
    """The actor: one engine (``ChunkWorker``), progress sent to the ``_Progress`` actor at most every 0.5 s."""

    def __init__(self, config: Config, progress) -> None:
        self.worker = ChunkWorker(config)
        self.progress = progress

    def node(self) -> str:
        return os.uname().nodename

    def _ticker(self, key, final: int | None):
        last = [0.0]

        def tick(n, _total=None):
            now = time.monotonic()
            if now - last[0] >= 0.5 or n == final:
                last[0] = now
                self.progress.set.remote(key, n)
        return tick

    def render(self, chunk: Chunk, attempt: int) -> ChunkResult:
        result = self.worker.render(chunk, attempt, self._ticker(("chunk", chunk.id), chunk.size))
        result.node = _ray().get_runtime_context().get_node_id()[:12]  # the Ray node (hosts may share a name)
        return result

    def clip(self, job: ClipJob, key: int) -> ClipResult:
        result = process_clip(job, self.worker.config, inpainter=self.worker.inpainter,
                              progress=self._ticker(("clip", key), None))
        self.progress.set.remote(("clip", key), result.frames)
        return result


def _cuda_engine(config: Config) -> bool:
    return config.engine.name not in ("telea", "ns") and config.engine.device in ("auto", "cuda") or \
        str(config.engine.device).startswith("cuda")


class RayExecutor:
    """Runs chunks (``render``) or whole clips (``clips``) on a pool of Ray actors. Call ``connect`` first.

    ``workers``: how many actors (default: the cluster's CPUs / ``cpus_per_worker``, or its GPUs /
    ``gpus_per_worker`` when the engine uses CUDA). ``gpus_per_worker``: default 1 when the cluster has GPUs
    and the engine is neural, else 0. Workers that have not started (loaded the engine) within
    ``start_timeout`` seconds are dropped; DistributedError when none started."""

    def __init__(self, config: Config, *, workers: int | None = None, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float | None = None, start_timeout: float = 120.0) -> None:
        if workers is not None and workers < 1:
            raise DistributedError(f"--workers {workers}: must be 1 or more")
        if cpus_per_worker <= 0:
            raise DistributedError(f"--cpus-per-worker {cpus_per_worker}: must be more than 0")
        self.config = config
        self.workers = workers
        self.cpus = float(cpus_per_worker)
        self.gpus = gpus_per_worker
        self._actors: list = []
        self._progress = None
        self.start_timeout = start_timeout
        self.start_errors: list[str] = []
        self.startup_seconds = 0.0
        self.nodes: list[str] = []
        self.lost_workers = 0

    def _start(self) -> None:
        if self._actors:
            return
        ray = _ray()
        resources = ray.cluster_resources()
        gpus = self.gpus
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) > 0 and _cuda_engine(self.config) else 0.0
        n = self.workers
        if n is None:
            n = int(resources.get("GPU", 0) // gpus) if gpus > 0 else int(resources.get("CPU", 1) // self.cpus)
            n = max(1, n)
        t0 = time.perf_counter()
        # the progress counter lives on the driver's node, which stays (worker nodes may come and go)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
        self._progress = ray.remote(num_cpus=0)(_Progress).options(scheduling_strategy=here).remote()
        actor = ray.remote(_Worker).options(num_cpus=self.cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0)
        actors = [actor.remote(self.config, self._progress) for _ in range(n)]
        # Wait until the workers have started and loaded the engine: those the cluster cannot place (too few
        # CPUs/GPUs) would otherwise hold their first chunk forever.
        probes = {a.node.remote(): a for a in actors}
        ready, late = ray.wait(list(probes), num_returns=len(probes), timeout=self.start_timeout)
        self._actors = []
        for ref in ready:
            try:
                ray.get(ref)
                self._actors.append(probes[ref])
            except Exception as exc:  # noqa: BLE001 - the engine failed to load there
                self.start_errors.append(_reason(getattr(exc, "cause", None) or exc))
        for ref in late:
            with contextlib.suppress(Exception):
                ray.kill(probes[ref])
        self.startup_seconds = time.perf_counter() - t0
        if not self._actors:
            why = _why_none_started(ray.cluster_resources(), self.cpus, gpus, self.start_errors, self.start_timeout)
            raise DistributedError(f"no Ray worker could start: {why}")

    def close(self) -> None:
        if not self._actors:
            return
        ray = _ray()
        for a in [*self._actors, self._progress]:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(a)
        self._actors = []
        self._progress = None

    def _total(self) -> int | None:
        ray = _ray()
        try:
            return ray.get(self._progress.total.remote(), timeout=5)
        except Exception:  # noqa: BLE001 - progress is best effort
            return None

    def _run(self, items: list, submit, describe, on_done, on_lost, progress: Callable[[int], None] | None):
        """The scheduling loop shared by chunks and clips; ``submit(actor, item, attempt) -> ref``."""
        ray = _ray()
        from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

        self._start()
        idle = deque(self._actors)
        pending = deque(items)
        attempts: dict[int, int] = {}
        running: dict = {}
        last_progress = -1
        try:
            while pending or running:
                while pending and idle:
                    actor, item = idle.popleft(), pending.popleft()
                    attempts[id(item)] = attempts.get(id(item), 0) + 1
                    running[submit(actor, item, attempts[id(item)])] = (actor, item)
                if not running:
                    raise DistributedError(f"no workers left ({self.lost_workers} lost); {describe(pending[0])} "
                                           "was not rendered")
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL)
                if progress is not None:
                    done = self._total()
                    if done is not None and done != last_progress:
                        last_progress = done
                        progress(done)
                for ref in ready:
                    actor, item = running.pop(ref)
                    try:
                        on_done(item, ray.get(ref, timeout=60))
                        idle.append(actor)
                        continue
                    except RayActorError as exc:  # the worker (or its node) is gone: never used again
                        self.lost_workers += 1
                        reason = f"its worker was lost ({_first_line(exc)})"
                    except RayTaskError as exc:
                        idle.append(actor)
                        cause = getattr(exc, "cause", None)
                        reason = _reason(cause) if cause is not None else _first_line(exc)
                    except GetTimeoutError:
                        self.lost_workers += 1
                        reason = "its worker did not answer"
                    except RayError as exc:  # e.g. its result was lost with its node
                        self.lost_workers += 1
                        reason = f"its worker failed ({_first_line(exc)})"
                    if attempts[id(item)] >= TRIES:
                        on_lost(item, reason)
                    else:
                        pending.appendleft(item)
        finally:
            for ref in running:
                with contextlib.suppress(Exception):  # best effort
                    ray.cancel(ref, force=True)
        if progress is not None:
            done = self._total()
            if done is not None:
                progress(done)

    def render(self, chunks: list[Chunk], progress: Callable[[int], None] | None = None) -> list[ChunkResult]:
        results: dict[int, ChunkResult] = {}

        def lost(chunk: Chunk, reason: str):
            raise DistributedError(f"{chunk.describe()} failed twice: {reason}")

        self._run(chunks, lambda a, c, n: a.render.remote(c, n), lambda c: c.describe(),
                  lambda c, r: results.__setitem__(c.id, r), lost, progress)
        self.nodes = sorted({r.node for r in results.values()})
        return [results[c.id] for c in chunks]

    def clips(self, jobs: list[ClipJob], *, on_result: Callable[[ClipResult], None] | None = None,
              progress: Callable[[int], None] | None = None) -> list[ClipResult]:
        keyed = list(enumerate(jobs))
        results: dict[int, ClipResult] = {}

        def done(item, r: ClipResult):
            results[item[0]] = r
            if on_result is not None:
                on_result(r)

        def lost(item, reason: str):
            job = item[1]
            done(item, ClipResult(job.label or job.input, job.output, status="failed", reason=reason))

        self._run(keyed, lambda a, it, n: a.clip.remote(it[1], it[0]), lambda it: it[1].input, done, lost, progress)
        return [results[i] for i in range(len(jobs))]


def _why_none_started(resources: dict, cpus: float, gpus: float, errors: list[str], timeout: float) -> str:
    """Why no worker started, in the user's terms: a request the cluster cannot place at all is named by its flag
    (Ray cancels such a worker with a message about actors); else the first worker's error, else the timeout."""
    for what, want, flag in (("GPU", gpus, "--gpus-per-worker"), ("CPU", cpus, "--cpus-per-worker")):
        if want > resources.get(what, 0):
            return f"each worker asks for {flag} {want:g} and the cluster has {resources.get(what, 0):g} {what}s"
    if errors:
        return errors[0]
    return (f"none started within {timeout:.0f} s (the cluster has {resources.get('CPU', 0):g} CPUs and "
            f"{resources.get('GPU', 0):g} GPUs; each worker asks for {cpus:g} CPUs and {gpus:g} GPUs)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, StreamfillError) else f"{type(exc).__name__}: {text}"
