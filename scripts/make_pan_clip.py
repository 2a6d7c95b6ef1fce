"""Make a moving-camera test clip from a still photo: a 640x360 window pans across it (with a slow zoom and a
little hand-held jitter), so a temporal-completion run can be scored on footage the project never tuned on.

Usage: python scripts/make_pan_clip.py PHOTO.jpg OUT.mp4 [FRAMES] [SUBJECT.png]
(default 90 frames, 25 fps, H.264 crf 12). With SUBJECT (an RGBA cut-out, or a photo whose centre object is
cut out by GrabCut), that object also crosses the picture from right to left on its own, bobbing and turning
a little, so the occluder of `streamfill eval temporal` passes over something that moves against the scene.

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

from streamfill.masks import cutouts

WIDTH, HEIGHT = 640, 360
SOURCE_WIDTH = 1400      # the photo is scaled to this width first
VIEW = (900, 506)        # the window's size on the scaled photo at the start (it zooms in by ZOOM)
ZOOM = 0.15


def subject_layer(cutout: np.ndarray, k: int, frames: int) -> np.ndarray:
    """The subject at frame k as a HEIGHT x WIDTH x 4 float32 layer: right to left across the middle."""
    u = k / max(1, frames - 1)
    pose = cutouts.Pose(0.85 - 0.7 * u, 0.55 + 0.04 * math.sin(6 * math.pi * u), 1.0 + 0.1 * u,
                        8.0 * math.sin(4 * math.pi * u))
    return cutouts.place(cutout, pose, (HEIGHT, WIDTH), 0.4 * HEIGHT)


def main(photo: str, out: str, frames: int = 90, subject: str | None = None) -> None:
    image = cv2.imread(photo)
    if image is None:
        sys.exit(f"error: cannot read {photo}")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    s = SOURCE_WIDTH / image.shape[1]
    image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    cutout = None if subject is None else cutouts.load_cutout(subject)
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
            if cutout is not None:
                frame, _ = cutouts.composite(frame, [subject_layer(cutout, k, frames)])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) >= 4 else 90,
         sys.argv[4] if len(sys.argv) == 5 else None)
