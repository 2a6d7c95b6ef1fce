"""What a host integration (plugins/gstreamer, plugins/blender) needs to use ``streamfill serve``.

Imports only numpy, pyzmq and ``streamfill.protocol``, so it runs inside a host application's own Python
(Debian's GStreamer plugin loader and Blender both use the system ``python3``). ``use_checkout()`` makes
``streamfill.protocol`` importable from the streamfill checkout that holds this file, without installing
streamfill (and its heavy dependencies) into the host's Python.

- ``ServeClient``: one DEALER connection to serve; ``fill(image, mask, index=...)`` sends one frame and
  waits for its result, with the lazy-pirate retries of PROTOCOL.md section 10 and ``busy`` resends. Every
  wait takes an optional ``cancel`` (a callable, polled at least every 50 ms: a host's Esc or flush).
- ``BoxTracker``: follows a box through frames by normalised cross-correlation (numpy FFT, translation
  only); ``box_mask`` turns a box into a mask.
- ``parse_box``: ``"x,y,w,h"`` -> a tuple of ints, with one-line errors.

Data contracts: images H x W x 3 uint8 RGB, masks H x W uint8 (255 = fill, 0 = keep), boxes (x, y, w, h)
in pixels with (0, 0) the top-left corner.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parents[1]


def use_checkout(root: str | os.PathLike | None = None) -> None:
    """Make ``import streamfill.protocol`` work: prefer ``root`` (or $STREAMFILL_HOME), then this checkout.

    Only the protocol module (numpy + standard library) is used from it; nothing heavy is imported.
    """
    for candidate in (root, os.environ.get("STREAMFILL_HOME"), CHECKOUT):
        if candidate and (Path(candidate) / "streamfill" / "protocol.py").is_file():
            path = str(Path(candidate).resolve())
            if path not in sys.path:
                sys.path.insert(0, path)
            return


use_checkout()

import zmq  # noqa: E402  (after the path set-up, like the protocol)

from streamfill import protocol  # noqa: E402


class HostError(Exception):
    """serve could not fill a frame (down, refused it, or answered an error); the message is one line."""


class Cancelled(Exception):
    """A wait (``hello``, ``fill``) was stopped by its ``cancel()``; the request may still be answered later
    (the reply is then ignored, as a late one). Not a ``HostError``: nothing went wrong."""


class ServeClient:
    """A DEALER connection to ``streamfill serve`` (plugins/PROTOCOL.md 6.1), one request in flight.

    ``timeout``: seconds to wait for each answer; ``retries``: fresh-socket resends after a timeout.
    ``curve_keys``: a ``streamfill keys`` folder (server.key, client.key_secret) for a CURVE server.
    """

    def __init__(self, endpoint: str, *, timeout: float = 10.0, retries: int = 2, stream: str = "",
                 name: str = "streamfill-host", curve_keys: str | None = None, encoding: str = "raw"):
        self.endpoint, self.timeout, self.retries = endpoint, float(timeout), int(retries)
        self.stream, self.name, self.encoding = stream, name, encoding
        self.info: dict = {}
        self._curve = None
        if curve_keys:
            from zmq import auth

            public, secret = auth.load_certificate(str(Path(curve_keys) / "client.key_secret"))
            server_public, _ = auth.load_certificate(str(Path(curve_keys) / "server.key"))
            self._curve = (public, secret, server_public)
        self._ctx = zmq.Context()
        self._sock = None
        self._req = 0
        self._sent: dict[int, tuple[int, list]] = {}  # look-ahead: req -> (index, parts), oldest first
        self._bye: tuple[int, list] | None = None  # the drain's bye, until its reply
        self._busy_since: float | None = None  # when serve began answering nothing but busy

    # -- socket --------------------------------------------------------------------------------------------

    def _busy(self) -> None:
        """Serve answered ``busy`` (its queue is full): wait a moment before the resend. After ``timeout x
        (retries + 1)`` seconds of nothing but ``busy`` (other clients keep its queue full, or ``--queue`` is
        too small for this client's window) give up in one line instead of resending forever."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        elif now - self._busy_since > self.timeout * (self.retries + 1):
            raise HostError(f"streamfill serve at {self.endpoint} stayed busy for {now - self._busy_since:.0f} s: "
                            "its queue is full (other clients, or a --queue smaller than this client's window)")
        time.sleep(0.02)

    def _connect(self):
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        if self._curve:
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = self._curve
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise HostError(f"bad endpoint {self.endpoint!r}: {exc}") from None
        return sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._sock = self._connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()

    def __enter__(self) -> ServeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------------------

    def _ask(self, parts: list, req: int, what: str, timeout: float | None = None, retries: int | None = None,
             cancel=None):
        """Send ``parts`` and return the decoded reply with this ``req``; resends on timeout and ``busy``.
        ``cancel()``: returning True (checked at least every 50 ms) stops the wait with ``Cancelled``."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        if self._sock is None:
            self._sock = self._connect()
        tries = 0
        self._sock.send_multipart([b""] + parts, copy=False)
        deadline = time.monotonic() + timeout
        while True:
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled while waiting for {what}")
            left = deadline - time.monotonic()
            wait = left if cancel is None else min(left, 0.05)
            if left <= 0 or not self._sock.poll(int(wait * 1000) + 1):
                if time.monotonic() < deadline:
                    continue
                tries += 1
                if tries > retries:
                    raise HostError(f"no answer from streamfill serve at {self.endpoint} for {what} after "
                                    f"{tries} tries of {timeout:g} s (is `streamfill serve --bind "
                                    f"{self.endpoint}` running?)")
                self._reset()  # lazy pirate: a fresh socket drops stale replies and queued requests
                self._sock.send_multipart([b""] + parts, copy=False)
                deadline = time.monotonic() + timeout
                continue
            msg = _decode_reply(self._sock.recv_multipart(copy=False), f" to {what}")
            if msg.req != req:
                continue  # a late reply to a request resent or abandoned earlier
            if msg.type == "error" and msg.header.get("code") == "busy":
                self._busy()
                self._sock.send_multipart([b""] + parts, copy=False)
                deadline = time.monotonic() + timeout
                continue
            self._busy_since = None
            if msg.type == "error":
                raise HostError(f"streamfill serve refused {what}: {msg.header.get('code')}: "
                                f"{msg.header.get('message')}")
            return msg

    def hello(self, timeout: float | None = None, retries: int | None = None, cancel=None) -> dict:
        """Negotiate the version; returns serve's hello reply (``mask_dilate``, ``encodings``, limits).
        ``timeout``/``retries`` override the client's (a quick probe of a server that was down); ``cancel``
        as in ``fill``."""
        self._req += 1
        msg = self._ask(protocol.encode_hello(name=self.name, req=self._req), self._req, "hello", timeout, retries,
                        cancel)
        if msg.type != "hello":
            raise HostError(f"streamfill serve answered hello with {msg.type}")
        self.info = dict(msg.header)
        return self.info

    def fill(self, image: np.ndarray, mask: np.ndarray, *, index: int, pts: int | None = None,
             time_base: tuple[int, int] | None = None, cancel=None) -> np.ndarray:
        """The filled image (H x W x 3 uint8 RGB) for ``image`` and ``mask`` (H x W uint8, 255 = fill).
        ``cancel()``: returning True (checked at least every 50 ms while waiting) stops the wait by raising
        ``Cancelled`` (a host's Esc); without it the wait ends only with the answer or ``HostError``."""
        parts = self._frame(image, mask, index, pts, time_base)
        msg = self._ask(parts, self._req, f"frame {index}", cancel=cancel)
        if msg.type != "result" or msg.image is None or msg.image.shape != image.shape:
            raise HostError(f"streamfill serve answered frame {index} with {msg.type} of the wrong size")
        return msg.image

    def _frame(self, image, mask, index, pts, time_base, extra=None) -> list:
        """The parts of a ``frame`` request under a new ``req`` (``self._req``)."""
        self._req += 1
        return protocol.encode_frame(np.ascontiguousarray(image), index=index, pts=pts, time_base=time_base,
                                     mask=np.ascontiguousarray(mask), stream=self.stream or None, req=self._req,
                                     encoding=self.encoding, mask_encoding="raw" if self.encoding == "raw" else "png",
                                     extra=extra)

    # -- look-ahead: deferred replies (PROTOCOL.md 6.1.1) ---------------------------------------------------

    @property
    def lookahead(self) -> int:
        """Frames serve holds before it answers a look-ahead stream (its hello reply; 0: answers at once)."""
        value = self.info.get("lookahead", 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def unanswered(self) -> int:
        """Frames sent with ``send`` and not answered yet."""
        return len(self._sent)

    def send(self, image: np.ndarray, mask: np.ndarray, *, index: int, pts: int | None = None,
             time_base: tuple[int, int] | None = None) -> int:
        """Send one frame of a look-ahead stream without waiting; returns its ``req``. Its result comes
        later from ``results`` (after ``lookahead`` more frames, or from ``drain``). The message is copied
        (kept for resends), so the arrays may change once this returns."""
        parts = [bytes(p) for p in self._frame(image, mask, index, pts, time_base, {"lookahead": True})]
        self._sent[self._req] = (index, parts)
        if self._sock is None:
            self._sock = self._connect()
        self._sock.send_multipart([b""] + parts)
        return self._req

    def _resend_all(self) -> None:
        """Lazy pirate for a look-ahead stream: a fresh socket, then every unanswered frame again, oldest
        first (serve starts the stream afresh at the oldest; replies to the old socket are lost)."""
        self._reset()
        for _, parts in self._sent.values():
            self._sock.send_multipart([b""] + parts)
        if self._bye is not None:
            self._sock.send_multipart([b""] + self._bye[1])

    def results(self, *, wait: bool = False, cancel=None) -> list[tuple[int, int, np.ndarray]]:
        """The results that have arrived, as ``[(req, index, image)]`` in arrival order (serve's: index
        order). ``wait``: block until at least one arrives (``timeout`` each try, fresh-socket resends of
        every unanswered frame, ``retries`` times, then ``HostError``). ``cancel()``: returning True stops
        the wait (an element flushing). An ``error`` reply to a sent frame raises ``HostError``."""
        got: list[tuple[int, int, np.ndarray]] = []
        if self._sock is None:
            self._sock = self._connect()
        self._collect(got)
        if wait and not got and self._sent:
            self._pump(got, lambda: bool(got) or not self._sent, cancel,
                       lambda: f"for frame {next(iter(self._sent.values()))[0]}")
            self._collect(got)
        return got

    def window(self, *, slack: int = 2, cancel=None) -> list[tuple[int, int, np.ndarray]]:
        """The send window of a look-ahead stream: the results that have arrived (as ``results``), waiting
        for at least one while more than ``lookahead + slack`` frames are unanswered (``cancel`` as in
        ``results``). Call it after each ``send``."""
        done = self.results()
        while not done and self.unanswered > self.lookahead + slack and not (cancel is not None and cancel()):
            done = self.results(wait=True, cancel=cancel)
        return done

    def _collect(self, got: list) -> None:
        """Take every reply already waiting, without blocking."""
        while self._sock.poll(0):
            got.extend(self._take(self._sock.recv_multipart(copy=False)))

    def _pump(self, got: list, finished, cancel, what, tries: int = 0) -> int | None:
        """Take replies into ``got`` until ``finished()`` (returns the tries used so far) or ``cancel()``
        (None). After ``timeout`` without a reply every unanswered frame is sent again on a fresh socket; the
        try after ``retries`` (counting the ``tries`` already used) raises ``HostError`` naming ``what()``."""
        deadline = time.monotonic() + self.timeout
        while not finished():
            if self._sock.poll(50):
                got.extend(self._take(self._sock.recv_multipart(copy=False)))
                deadline = time.monotonic() + self.timeout
                continue
            if cancel is not None and cancel():
                return None
            if time.monotonic() < deadline:
                continue
            tries += 1
            if tries > self.retries:
                raise HostError(f"no answer from streamfill serve at {self.endpoint} {what()} after {tries} "
                                f"tries of {self.timeout:g} s (is `streamfill serve --bind {self.endpoint}` "
                                "running?)")
            self._resend_all()
            deadline = time.monotonic() + self.timeout
        return tries

    def _take(self, raw) -> list[tuple[int, int, np.ndarray]]:
        msg = _decode_reply(raw)
        if self._bye is not None and msg.req == self._bye[0] and msg.type in ("bye", "error"):
            if msg.type == "error" and msg.header.get("code") == "busy":
                self._busy()
                self._sock.send_multipart([b""] + self._bye[1])
                return []
            self._busy_since = None
            self._bye = None
            if msg.type == "error":
                raise HostError(f"streamfill serve could not finish the stream: {msg.header.get('code')}: "
                                f"{msg.header.get('message')}")
            return []
        sent = self._sent.get(msg.req) if msg.req is not None else None
        if sent is None:
            return []  # a late reply to a frame resent or forgotten (a flush)
        if msg.type == "error" and msg.header.get("code") == "busy":
            self._busy()
            self._resend_all()  # serve dropped it: everything after it must follow it again
            return []
        self._busy_since = None
        del self._sent[msg.req]
        if msg.type == "error":
            raise HostError(f"streamfill serve refused frame {sent[0]}: {msg.header.get('code')}: "
                            f"{msg.header.get('message')}")
        if msg.type != "result" or msg.image is None:
            raise HostError(f"streamfill serve answered frame {sent[0]} with {msg.type}")
        return [(msg.req, sent[0], msg.image)]

    def drain(self, cancel=None) -> list[tuple[int, int, np.ndarray]]:
        """End the look-ahead stream: ask serve for every held frame (a ``bye``) and return their results
        (as ``results``) once the ``bye`` reply has come. Frames still unanswered then were lost by serve
        (it restarted or dropped the stream): they are sent again, as after a timeout."""
        if self._sock is None:
            self._sock = self._connect()
        got: list[tuple[int, int, np.ndarray]] = []
        tries = 0
        while True:
            self._req += 1
            self._bye = (self._req, [bytes(p) for p in protocol.encode_bye(stream=self.stream or None,
                                                                             req=self._req)])
            self._sock.send_multipart([b""] + self._bye[1])
            try:
                tries = self._pump(got, lambda: self._bye is None, cancel, lambda: "to the end of the stream",
                                   tries)
            finally:
                if self._bye is not None:  # cancelled or failed: nothing waits for the bye's reply any more
                    self._bye = None
            if tries is None or not self._sent:
                return got
            tries += 1
            if tries > self.retries:
                raise HostError(f"streamfill serve lost {len(self._sent)} frames of stream {self.stream!r} "
                                f"(from frame {next(iter(self._sent.values()))[0]})")
            self._resend_all()

    def forget(self) -> None:
        """Drop every unanswered frame (a flush): their late results are ignored."""
        self._sent.clear()
        self._bye = None

    def discard(self) -> None:
        """Tell serve to drop what it holds of this stream (best effort, no wait) and forget it here."""
        self.forget()
        if self._sock is None:
            return
        self._req += 1
        with contextlib.suppress(zmq.ZMQError):
            self._sock.send_multipart([b""] + protocol.encode_bye(stream=self.stream or None, req=self._req,
                                                                    discard=True), zmq.NOBLOCK)

    def bye(self, count: int | None = None) -> None:
        """Tell serve the stream ended (best effort: a short wait, no retries)."""
        if self._sock is None:
            return
        self._req += 1
        try:
            self._sock.send_multipart([b""] + protocol.encode_bye(stream=self.stream or None, count=count,
                                                                    req=self._req), zmq.NOBLOCK)
            self._sock.poll(200)
        except zmq.ZMQError:
            pass


def frame_order(name: str) -> tuple:
    """Sort key putting per-frame files in frame order: numbers in names compared as numbers (m2 before m10),
    as streamfill's own readers order a folder."""
    return tuple(int(p) if p.isdecimal() else p for p in re.split(r"(\d+)", name)), name


# -------------------------------------------------------------------------------------------------- boxes


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (pixels) -> (x, y, w, h); ValueError with a one-line message otherwise."""
    try:
        x, y, w, h = (int(round(float(v))) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        raise ValueError(f"box {text!r} must be x,y,w,h in pixels, e.g. 40,30,24,16") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ValueError(f"box {text!r}: x and y must be >= 0, w and h > 0")
    return x, y, w, h


def box_mask(box: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """An H x W uint8 mask, 255 inside ``box`` (clipped to the frame), 0 elsewhere."""
    x, y, w, h = box
    mask = np.zeros((height, width), np.uint8)
    mask[max(0, y):max(0, min(height, y + h)), max(0, x):max(0, min(width, x + w))] = 255
    return mask


def _colour(image: np.ndarray) -> np.ndarray:
    return image[..., :3].astype(np.float64)


class BoxTracker:
    """Follow a box from frame to frame: the best normalised cross-correlation (RGB) of the first frame's
    patch within ``search`` x the patch size around the last position (translation only, numpy FFT).

    A light stand-in for streamfill's own tracker (``--box``, OpenCV flow + GrabCut), which a host's Python
    cannot import: it follows rigid objects that keep their size and look; ``score`` is the last match's
    correlation (1 = perfect); while the match is poor (< ``min_score``: the object is hidden or changed) the
    box holds still and the search widens, up to 4 x, until the object is found again.
    """

    def __init__(self, image: np.ndarray, box: tuple[int, int, int, int], *, search: float = 0.5,
                 min_score: float = 0.7):
        height, width = image.shape[:2]
        x, y, w, h = box
        x, y = min(max(0, x), width - 1), min(max(0, y), height - 1)
        w, h = max(1, min(w, width - x)), max(1, min(h, height - y))
        self.box = (x, y, w, h)
        self.search, self.min_score, self.score = float(search), float(min_score), 1.0
        self.lost = 0  # frames since the last confident match: the search widens while the object is hidden
        # the matched patch is the box itself (the background around a moving object would pull the match
        # back), grown by a ring of context only while it is too plain to match (a box drawn exactly on a
        # flat-coloured object)
        for pad in (0, 1, 2, 4, 8, 16):
            px0, py0 = max(0, x - pad), max(0, y - pad)
            px1, py1 = min(width, x + w + pad), min(height, y + h + pad)
            patch = _colour(image[py0:py1, px0:px1])
            self._template = patch - patch.mean(axis=(0, 1))
            if self._template.std() >= 8.0:
                break
        self._offset = (x - px0, y - py0)
        self._patch = (px0, py0, px1 - px0, py1 - py0)
        self._norm = float(np.sqrt((self._template ** 2).sum()))

    def update(self, image: np.ndarray) -> tuple[int, int, int, int]:
        """The box in ``image`` (the next frame)."""
        if self._norm < 1e-3:  # a flat patch cannot be matched: keep the box where it is
            return self.box
        x, y, w, h = self._patch
        height, width = image.shape[:2]
        search = self.search * min(4.0, 1.5 ** self.lost)
        mx, my = int(np.ceil(w * search)) + 2, int(np.ceil(h * search)) + 2
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        region = _colour(image[y0:y1, x0:x1])
        rh, rw = region.shape[:2]
        if rh < h or rw < w:
            return self.box
        shape = (rh, rw)
        spectra = np.fft.rfft2(region, shape, axes=(0, 1)) * np.conj(np.fft.rfft2(self._template, shape, axes=(0, 1)))
        corr = np.fft.irfft2(spectra, shape, axes=(0, 1)).sum(axis=2)[:rh - h + 1, :rw - w + 1]
        sums = np.pad(region, ((1, 0), (1, 0), (0, 0))).cumsum(0).cumsum(1)
        squares = np.pad(region ** 2, ((1, 0), (1, 0), (0, 0))).cumsum(0).cumsum(1)

        def window(table):
            return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]

        # per-channel variance of each window (the template has zero mean per channel), summed
        var = np.maximum(window(squares) - window(sums) ** 2 / float(w * h), 0.0).sum(axis=2)
        ncc = corr / (np.sqrt(var) * self._norm + 1e-6)
        dy, dx = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        self.score = float(ncc[dy, dx])
        if self.score < self.min_score:
            self.lost += 1
        else:
            self.lost = 0
            self._patch = (x0 + int(dx), y0 + int(dy), w, h)
            ox, oy = self._offset
            self.box = (self._patch[0] + ox, self._patch[1] + oy, self.box[2], self.box[3])
        return self.box


def _decode_reply(raw, what: str = ""):
    """A reply's message (the empty delimiter frame dropped); ``HostError`` for one that does not parse."""
    try:
        return protocol.decode(raw[1:] if len(raw[0]) == 0 else raw)
    except protocol.MessageError as exc:
        raise HostError(f"streamfill serve sent a bad reply{what}: {exc}") from None
