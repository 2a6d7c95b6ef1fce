"""``streamfill serve``: host applications send frame + mask over ZeroMQ and get the filled frame back.

One I/O thread owns a ROUTER socket (many clients at once) and hands requests to worker threads through a
fair queue: round-robin across clients, first-in first-out within one client, and at most one request of a
client in work at a time, so its results come back in request order and one heavy client cannot hold up
the others for more than one request each. The queue is bounded in requests (``queue``) and in bytes
(``queue_bytes``: requests received and not yet answered); a request beyond either bound, or beyond half of
either for one client, is answered at once with a ``busy`` error. Every bad request gets an ``error``
message (see plugins/PROTOCOL.md); an unexpected exception while handling one becomes an ``internal`` error
reply for that request (its traceback is logged once per place under ``STREAMFILL_DEBUG=1``) and the
service keeps serving. Parts larger than ``max_message_bytes`` make libzmq drop the connection
(ZMQ_MAXMSGSIZE); declared sizes over the limits get a ``too_large`` error. PNG and JPEG payloads are
decoded by FFmpeg (C, quiet) after the protocol has validated them.

The completion function is injected: ``fill(image, mask) -> image`` with image H x W x 3 uint8 RGB
(read-only, do not modify it), mask H x W uint8 (255 = fill), result H x W x 3 uint8 RGB. A fill with
per-stream state (``pipeline.streams.TemporalFill``, ``serve --temporal``) is also given the message; when it has a
look-ahead window (``lookahead`` > 0, ``submit``, ``drain``, ``expire``), ``frame`` requests that ask for it
get deferred replies (plugins/PROTOCOL.md 6.1.1): zero or more ``result`` messages, each echoing its own
request, and ``bye`` drains the stream. A worker hands each reply to the I/O thread with a flag frame that
marks the request's last one, so the fair queue releases the client only then; idle workers let the fill
drop streams whose clients went quiet.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

from streamfill import __version__, protocol
from streamfill.config import TransportConfig
from streamfill.errors import TransportError
from streamfill.io.payload import decode_still
from streamfill.transport import keys as keyfiles
from streamfill.transport._zmq import attach, check_endpoint, make_socket

FillFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_ids = itertools.count()
_log = logging.getLogger(__name__)


class FairQueue:
    """Requests waiting for a worker, kept per client.

    ``put`` refuses (returns the reason) when ``max_items`` requests already wait, when the bytes held
    (waiting or in work) would pass ``max_bytes``, or when this client would hold more than half of either
    (a first request always fits when nothing at all is held, so any accepted message size can get through).
    ``get`` hands out the next request round-robin across clients that have none in work; ``done`` releases
    it (call it once the reply is on its way, so a client's replies cannot overtake each other).
    """

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max(1, int(max_items))
        self.max_bytes = max(1, int(max_bytes))
        self._cond = threading.Condition()
        self._pending: dict[bytes, deque] = {}
        self._ready: deque[bytes] = deque()
        self._working: dict[bytes, int] = {}
        self._bytes: dict[bytes, int] = {}
        self._count: dict[bytes, int] = {}
        self.items = 0
        self.bytes = 0

    def put(self, client: bytes, item, nbytes: int) -> str | None:
        with self._cond:
            mine_items, mine_bytes = self._count.get(client, 0), self._bytes.get(client, 0)
            if self.items >= self.max_items:
                return f"queue full ({self.items} requests waiting)"
            if mine_items >= max(1, self.max_items // 2):
                return f"this client already has {mine_items} requests waiting"
            if self.bytes and self.bytes + nbytes > self.max_bytes:
                return f"queue full ({self.bytes} bytes held, limit {self.max_bytes})"
            if mine_bytes and mine_bytes + nbytes > self.max_bytes // 2:
                return f"this client already holds {mine_bytes} bytes (limit {self.max_bytes // 2} per client)"
            queue = self._pending.get(client)
            if queue is None:
                queue = self._pending[client] = deque()
                if client not in self._working:
                    self._ready.append(client)
            queue.append((item, nbytes))
            self._count[client] = mine_items + 1
            self._bytes[client] = mine_bytes + nbytes
            self.items += 1
            self.bytes += nbytes
            self._cond.notify()
            return None

    def get(self, timeout: float):
        """``(client, item)`` of the next request, or None after ``timeout`` seconds."""
        with self._cond:
            if not self._ready and not self._cond.wait_for(lambda: bool(self._ready), timeout):
                return None
            client = self._ready.popleft()
            queue = self._pending[client]
            item, nbytes = queue.popleft()
            if not queue:
                del self._pending[client]
            self._working[client] = nbytes
            self._count[client] -= 1
            self.items -= 1
            return client, item

    def done(self, client: bytes) -> None:
        with self._cond:
            nbytes = self._working.pop(client, None)
            if nbytes is None:
                return
            self.bytes -= nbytes
            left = self._bytes.get(client, 0) - nbytes
            if left > 0 or self._count.get(client):
                self._bytes[client] = left
            else:
                self._bytes.pop(client, None)
                self._count.pop(client, None)
            if client in self._pending:
                self._ready.append(client)  # to the back: the other clients go first
                self._cond.notify()


def _decoder(data: bytes, encoding: str, grey: bool) -> np.ndarray:
    return decode_still(data, encoding, grey=grey)


class ServeService:
    """The serve loop as a context manager: ``__enter__`` binds and starts the threads, ``__exit__`` stops.

    ``bind``: ZeroMQ endpoint (tcp port 0 picks a free port; ``endpoint`` tells which).
    ``curve_dir``: a ``streamfill keys`` directory; when given, every client must use CURVE with a key in
    ``DIR/authorized``. ``stop``: an optional event that ends the service when set. ``info``: extra fields
    for hello replies (e.g. ``mask_dilate``, how far the service grows masks before filling).
    ``wait`` blocks until the service stops and re-raises any failure of its threads in the caller.
    """

    def __init__(self, bind: str, fill: FillFn, config: TransportConfig | None = None, *,
                 curve_dir: str | Path | None = None, stop: threading.Event | None = None,
                 info: dict | None = None):
        self.bind = check_endpoint(bind)
        self.fill = fill
        # a fill with a look-ahead window answers look-ahead frames later (see the module doc)
        self._lookahead = (fill.lookahead if callable(getattr(fill, "submit", None))
                           and getattr(fill, "lookahead", 0) > 0 else 0)
        self._expire_fill = getattr(fill, "expire", None)
        self.config = config or TransportConfig()
        self.curve_dir = curve_dir
        self.info = dict(info or {})
        self.stop_event = stop or threading.Event()
        self.endpoint: str | None = None
        self.stats = {"requests": 0, "results": 0, "errors": 0, "busy": 0, "fill_failed": 0, "internal": 0}
        self.last_fill_error: str | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._ctx: zmq.Context | None = None
        self._auth = None
        self._inproc = f"inproc://streamfill-serve-{next(_ids)}"
        self.last_internal_error: str | None = None
        self._logged: set[tuple] = set()
        self._queue = FairQueue(self.config.queue, self.config.queue_bytes)
        self._expired_at = 0.0

    # -------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> ServeService:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(raise_errors=exc_type is None)

    def start(self) -> str:
        """Bind and start the threads; returns the bound endpoint."""
        server_keys = authorized = None
        if self.curve_dir is not None:
            if not keyfiles.curve_available():
                raise TransportError("this libzmq was built without CURVE support")
            server_keys = keyfiles.load_server_keys(self.curve_dir)
            authorized = keyfiles.authorized_dir(self.curve_dir)
        self._ctx = zmq.Context()
        try:
            if server_keys is not None:
                from zmq.auth.thread import ThreadAuthenticator

                self._auth = ThreadAuthenticator(self._ctx)
                self._auth.start()
                self._auth.configure_curve(domain="*", location=str(authorized))
            loop = threading.Thread(target=self._guard, args=(self._loop, server_keys),
                                    name="streamfill-serve-io", daemon=True)
            self._threads.append(loop)
            loop.start()
            if not self._ready.wait(10.0):
                raise TransportError(f"serve did not start on {self.bind} within 10 s")
            if self._error is not None:
                raise self._error
        except BaseException:
            self.close(raise_errors=False)
            raise
        return self.endpoint

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the service stops (or ``timeout`` s pass); True if stopped. Re-raises thread errors."""
        self.stop_event.wait(timeout)
        if self._error is not None:
            raise self._error
        return self.stop_event.is_set()

    def close(self, *, raise_errors: bool = True) -> None:
        self.stop_event.set()
        stuck = False
        for thread in self._threads:
            thread.join(5.0)
            stuck |= thread.is_alive()
        self._threads.clear()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            # a thread still inside a fill (a stuck engine) holds its socket, and term() would wait for it
            # forever: then the context is left to the (daemon) thread and the process's exit
            if not stuck:
                self._ctx.term()
            self._ctx = None
        if raise_errors and self._error is not None:
            raise self._error

    def _guard(self, target, *args) -> None:
        try:
            target(*args)
        except BaseException as exc:  # handed to the caller by wait()/close()
            if self._error is None:
                self._error = exc
            self.stop_event.set()
            self._ready.set()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    # ------------------------------------------------------------------------------------- I/O thread

    def _loop(self, server_keys) -> None:
        cfg = self.config
        hwm = max(16, cfg.queue)
        router = make_socket(self._ctx, zmq.ROUTER, sndhwm=hwm, rcvhwm=8, max_bytes=cfg.max_message_bytes)
        pull = make_socket(self._ctx, zmq.PULL)
        try:
            if server_keys is not None:
                keyfiles.apply_server(router, server_keys)
            self.endpoint = attach(router, self.bind, bind=True)
            pull.bind(self._inproc)
            for i in range(cfg.workers):
                worker = threading.Thread(target=self._guard, args=(self._work,),
                                          name=f"streamfill-serve-worker-{i}", daemon=True)
                self._threads.append(worker)
                worker.start()
            self._ready.set()
            poller = zmq.Poller()
            poller.register(router, zmq.POLLIN)
            poller.register(pull, zmq.POLLIN)
            while not self.stop_event.is_set():
                events = dict(poller.poll(100))
                if pull in events:
                    self._forward_replies(pull, router)
                if router in events:
                    self._take_requests(router)
        finally:
            router.close(0)
            pull.close(0)

    def _forward_replies(self, pull: zmq.Socket, router: zmq.Socket) -> None:
        for _ in range(256):
            try:
                parts = pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            last, parts = parts[0].bytes == b"1", parts[1:]  # a worker's flag: the request's last reply
            client = parts[0].bytes
            if len(parts) > 1:
                # ROUTER drops replies to clients that are gone or not reading (never blocks)
                with contextlib.suppress(zmq.Again):
                    router.send_multipart(parts, zmq.NOBLOCK, copy=False)
            if last:
                self._queue.done(client)  # only now may this client's next request start: replies stay in order

    def _take_requests(self, router: zmq.Socket) -> None:
        for _ in range(64):
            try:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self._take(router, parts)
            except Exception as exc:  # noqa: BLE001 - one message must never stop the I/O thread
                self._internal(exc, "taking a request")

    def _take(self, router: zmq.Socket, parts: list) -> None:
        self._count("requests")
        identity = parts[0]
        if len(parts) >= 2 and len(parts[1]) == 0:
            envelope, body = parts[:2], parts[2:]  # REQ-style: routing id + empty delimiter
        else:
            envelope, body = parts[:1], parts[1:]
        nbytes = sum(len(p) for p in body)
        refused = self._queue.put(identity.bytes, (envelope, body), nbytes)
        if refused is not None:
            self._count("busy")
            self._count("errors")
            reply = protocol.error_reply(protocol.MessageError(
                "busy", f"{refused}; retry later", _peek(body)))
            with contextlib.suppress(zmq.Again):
                router.send_multipart(envelope + reply, zmq.NOBLOCK)

    # ----------------------------------------------------------------------------------------- worker

    def _work(self) -> None:
        push = make_socket(self._ctx, zmq.PUSH)
        push.setsockopt(zmq.SNDTIMEO, 100)
        try:
            push.connect(self._inproc)
            while not self.stop_event.is_set():
                got = self._queue.get(0.1)
                if got is None:
                    self._expire()
                    continue
                client, (envelope, body) = got
                try:
                    replies = self.replies(body, client)
                except Exception as exc:  # noqa: BLE001 - becomes an `internal` reply; the service goes on
                    replies = [self._internal(exc, "handling a request", _peek(body))]
                # every reply carries a flag frame for the I/O thread (b"1" on the last one); a request
                # answered by nothing yet (a look-ahead frame) sends just the flag and the client's id
                messages = [[b"0"] + envelope + reply for reply in replies] or [[b"0", envelope[0]]]
                messages[-1][0] = b"1"
                for message in messages:
                    while not self.stop_event.is_set():
                        try:
                            push.send_multipart(message, copy=False)
                            break
                        except zmq.Again:
                            continue
                if self.stop_event.is_set():
                    self._queue.done(client)
        finally:
            push.close(0)

    def _internal(self, exc: BaseException, doing: str, header: dict | None = None) -> list:
        """Count an unexpected exception, log its traceback once per place (STREAMFILL_DEBUG=1), and
        return the ``internal`` error reply for the request it hit."""
        self._count("internal")
        self._count("errors")
        self.last_internal_error = f"{type(exc).__name__}: {exc}"[:300]
        frames = traceback.extract_tb(exc.__traceback__)
        where = (type(exc).__name__, *((frames[-1].filename, frames[-1].lineno) if frames else ()))
        if os.environ.get("STREAMFILL_DEBUG") == "1" and where not in self._logged:
            self._logged.add(where)
            _log.error("serve: internal error while %s (logged once per place)", doing, exc_info=exc)
        return protocol.error_reply(protocol.MessageError(
            "internal", f"unexpected failure in the service ({type(exc).__name__})", header))

    def _expire(self) -> None:
        """Let a fill with per-stream state drop streams whose clients went quiet (at most once a second)."""
        now = time.monotonic()
        if self._expire_fill is None or now - self._expired_at < 1.0:
            return
        self._expired_at = now
        try:
            self._expire_fill()
        except Exception as exc:  # noqa: BLE001 - counted and logged like any internal failure
            self._internal(exc, "expiring idle streams")

    def handle(self, body: list) -> list:
        """The last reply's parts (without envelope) to one request's parts (``[]`` when a look-ahead frame
        is answered by nothing yet). Never raises for bad input."""
        replies = self.replies(body)
        return replies[-1] if replies else []

    def _fill_failed(self, exc: BaseException, header: dict, note: str = "") -> list:
        """The ``fill_failed`` reply to the request ``header`` (counted; kept in ``last_fill_error``)."""
        self.last_fill_error = f"{type(exc).__name__}: {exc}"
        self._count("fill_failed")
        self._count("errors")
        return protocol.error_reply(protocol.MessageError("fill_failed", self.last_fill_error + note, header))

    def _results(self, done: list) -> list[list]:
        """Replies for frames a look-ahead stream completed: ``[(request header, image or exception)]``."""
        out = []
        for held, image in done:
            if isinstance(image, BaseException):
                out.append(self._fill_failed(image, held, f" (stream {held.get('stream', '')!r} starts afresh)"))
            else:
                out.append(self._result(image, protocol.Message(held)))
        return out

    def _result(self, out: np.ndarray, msg: protocol.Message) -> list:
        encoding = msg.header.get("reply_encoding", msg.header.get("encoding", "raw"))
        try:
            reply = protocol.encode_result(out, index=msg.index, pts=msg.pts, time_base=msg.time_base,
                                           stream=msg.stream or None, req=msg.req, encoding=encoding,
                                           jpeg_quality=self.config.jpeg_quality)
        except protocol.MessageError as exc:
            self._count("errors")
            return protocol.error_reply(protocol.MessageError(exc.code, exc.detail, msg.header))
        self._count("results")
        return reply

    def replies(self, body: list, client: bytes = b"") -> list[list]:
        """Every reply (parts without envelope, in order) to one request's parts: one, except on a look-ahead
        stream (plugins/PROTOCOL.md 6.1.1), where a ``frame`` gets the results its stream completed now (none
        while the window fills) and a ``bye`` the rest, then the ``bye`` reply. Never raises for bad input.
        ``client``: the sender's connection (its ROUTER id): a ``stream`` id names a stream within it, so two
        clients that use the same id (the default "" too) never share a temporal completion."""
        cfg = self.config
        try:
            msg = protocol.decode(body, max_bytes=cfg.max_message_bytes, max_side=cfg.max_side,
                                  decoder=_decoder)
            key = (client, msg.stream)  # the stream within this client's connection (a fill with per-stream state)
            if msg.type == "hello":
                version = protocol.negotiate(msg.header.get("versions", [msg.header["v"]]))
                return [protocol.encode_hello(version=version, name=f"streamfill {__version__}", req=msg.req,
                                             stream=msg.stream or None,
                                             extra={**self.info, "role": "serve",
                                                    "max_message_bytes": cfg.max_message_bytes,
                                                    "max_side": cfg.max_side, "encodings": list(protocol.ENCODINGS),
                                                    "queue": cfg.queue, "queue_bytes": cfg.queue_bytes,
                                                    "lookahead": self._lookahead})]
            if msg.type == "bye":
                done = []
                if self._lookahead:
                    done = self._results(self.fill.drain(key, discard=msg.header.get("discard", False)))
                return [*done, protocol.encode_bye(stream=msg.stream or None, req=msg.req)]
            if msg.type != "frame":
                raise protocol.MessageError("unexpected_type", f"serve takes frame, hello or bye, not {msg.type}",
                                            msg.header)
            if msg.mask is None:
                raise protocol.MessageError("bad_message", "serve needs a frame message with 2 payload parts: "
                                            "image and mask", msg.header)
        except protocol.MessageError as exc:
            self._count("errors")
            return [protocol.error_reply(exc)]
        if msg.header.get("lookahead") and self._lookahead:
            return self._results(self.fill.submit(msg.image, msg.mask, msg, lookahead=True, key=key))
        try:
            # a fill that keeps per-stream state (serve --temporal) is also given the message
            out = (self.fill(msg.image, msg.mask, msg, key=key) if getattr(self.fill, "takes_message", False)
                   else self.fill(msg.image, msg.mask))
            if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == msg.image.shape):
                raise TransportError(f"fill returned {getattr(out, 'shape', type(out).__name__)} "
                                     f"{getattr(out, 'dtype', '')}, expected {msg.image.shape} uint8")
        except Exception as exc:  # noqa: BLE001 - reported to the client as fill_failed, counted, kept
            return [self._fill_failed(exc, msg.header)]
        return [self._result(out, msg)]


def _peek(body: list) -> dict:
    """The request's header dict if it parses (for echoing req in a busy reply), else {}."""
    try:
        if body and len(body[0]) <= protocol.MAX_HEADER_BYTES:
            header = json.loads(body[0].bytes)
            return header if isinstance(header, dict) else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    return {}
