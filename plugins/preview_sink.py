#!/usr/bin/env python3
"""Preview sink plugin: subscribes to a publish sink and shows frames per second and latency.

Connects a SUB socket to ``streamfill ... --sink zmq:pub:ENDPOINT`` (or binds PULL with ``--pull``).
Opens a window when a display is available and OpenCV has GUI support; otherwise it only prints. Latency
is measured from the sender's ``sent_at`` header field (same machine clocks). A slow preview misses frames;
it never slows streamfill down. Imports streamfill.protocol, pyzmq, numpy (OpenCV optional).

    streamfill process in.mp4 -o out.mp4 --mask m.png --sink zmq:pub:tcp://127.0.0.1:5571
    python plugins/preview_sink.py --connect tcp://127.0.0.1:5571
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import zmq

from streamfill import protocol


def open_window():
    """A function showing an RGB frame, or None when headless (no display or no OpenCV GUI)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("win32", "darwin")):
        return None
    try:
        import cv2

        cv2.namedWindow("streamfill preview", cv2.WINDOW_NORMAL)
    except Exception:  # noqa: BLE001 - no OpenCV or a headless build: fall back to printing
        return None

    def show(image):
        cv2.imshow("streamfill preview", image[:, :, ::-1])
        cv2.waitKey(1)

    return show


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", default="tcp://127.0.0.1:5571", help="publish sink to subscribe to")
    p.add_argument("--pull", metavar="ENDPOINT", help="bind a PULL socket here instead (lossless push sink)")
    p.add_argument("--headless", action="store_true", help="never open a window")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until bye or Ctrl-C)")
    args = p.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL if args.pull else zmq.SUB)
    sock.linger = 0
    try:
        if args.pull:
            sock.bind(args.pull)
        else:
            sock.setsockopt(zmq.RCVHWM, 4)  # keep only the newest few frames
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(args.connect)
    except zmq.ZMQError as exc:  # a bad endpoint, or the port is taken (another copy running?)
        sock.close(0)
        ctx.term()
        print(f"preview_sink: cannot {'bind' if args.pull else 'connect'} {args.pull or args.connect}: {exc}",
              file=sys.stderr)
        return 2
    show = None if args.headless else open_window()
    print(f"preview_sink: {'window' if show else 'headless'}, from {args.pull or args.connect}",
          file=sys.stderr, flush=True)
    start = last_report = time.monotonic()
    frames = total = 0
    latencies: list[float] = []
    last_index = None
    skipped = 0
    try:
        while not args.seconds or time.monotonic() - start < args.seconds:
            if sock.poll(200):
                try:
                    msg = protocol.decode(sock.recv_multipart(copy=False))
                except protocol.MessageError as exc:
                    print(f"preview_sink: bad message: {exc}", file=sys.stderr)
                    continue
                if msg.type == "bye":
                    break
                if msg.type != "frame":
                    continue
                if isinstance(msg.header.get("sent_at"), (int, float)):
                    latencies.append(time.time() - msg.header["sent_at"])
                if last_index is not None and msg.index > last_index + 1:
                    skipped += msg.index - last_index - 1
                last_index = msg.index
                frames += 1
                total += 1
                if show:
                    show(msg.image)
            now = time.monotonic()
            if now - last_report >= 1.0:
                lat = sorted(latencies)
                lat_text = (f", latency median {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
                            if lat else "")
                print(f"preview_sink: {frames / (now - last_report):6.1f} fps{lat_text}, "
                      f"{skipped} skipped so far", file=sys.stderr, flush=True)
                frames, latencies, last_report = 0, [], now
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)
        ctx.term()
    print(f"preview_sink: {total} frames received, {skipped} skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
