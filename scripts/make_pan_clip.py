"""Make a moving-camera test clip from a still photo: a 640x360 window pans across it (with a slow zoom and a
little hand-held jitter), so a temporal-completion run can be scored on footage the project never tuned on.

Usage: python scripts/make_pan_clip.py PHOTO.jpg OUT.mp4 [FRAMES]   (default 90 frames, 25 fps, H.264 crf 12)

BENCHMARKS.md ("Held-out moving-camera clips") used three photos of the Debian package
lomiri-wallpapers-16.04 (`apt-get download lomiri-wallpapers-16.04`, then `dpkg -x`): Bridge_by_Sander_Klootwijk,
aitzgorri_by_Aitzol_Berasategi and picosdeeuropa_by_Aitzol_Berasategi (their licences are in the package's
copyright file; the clips are not in this repository).
"""

import math
import sys

import av
import cv2
import numpy as np

WIDTH, HEIGHT = 640, 360
SOURCE_WIDTH = 1400      # the photo is scaled to this width first
VIEW = (900, 506)        # the window's size on the scaled photo at the start (it zooms in by ZOOM)
ZOOM = 0.15


def main(photo: str, out: str, frames: int = 90) -> None:
    image = cv2.imread(photo)
    if image is None:
        sys.exit(f"error: cannot read {photo}")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    s = SOURCE_WIDTH / image.shape[1]
    image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    jitter = np.cumsum(np.random.default_rng(1).normal(0, 0.4, (frames, 2)), axis=0)
    with av.open(out, "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "12"}
        for k in range(frames):
            u = k / max(1, frames - 1)
            zoom = 1.0 + ZOOM * u
            vw, vh = VIEW[0] / zoom, VIEW[1] / zoom
            cx = VIEW[0] / 2 + 10 + u * (w - VIEW[0] - 20) + jitter[k, 0]
            cy = h / 2 + 0.1 * h * math.sin(2 * math.pi * u) + jitter[k, 1]
            m = np.array([[vw / WIDTH, 0, cx - vw / 2], [0, vh / HEIGHT, cy - vh / 2]], np.float32)
            frame = cv2.warpAffine(image, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 90)
