"""Colour statistics of the mask tracker (:mod:`streamfill.masks.propagate`): the foreground/background colour
model that pulls the mask's edge towards the object's colours, and the fixed 8 x 8 x 8 RGB histograms that say
whether the colours under a mask are still the keyframe object's (re-seek check, track confidence)."""

from __future__ import annotations

import numpy as np


class ColourModel:
    """Foreground/background colour histograms over quantised RGB, giving P(object | colour).

    The first fit (``rate`` None) is the keyframe's; later fits blend in at ``rate``. The object's side of
    the posterior never forgets a keyframe colour: it is the larger of the learnt and the keyframe's histogram
    (renormalised). Learnt alone, a colour the mask had lost (the dark part of an object beside dark background)
    faded from the object's histogram while the ring around the mask, which now held it, taught it to the
    background's: the pull then took more of that part each frame, a ratchet (``tiny`` 10020 over
    ``bigbuckbunny.mp4``: mean IoU 0.839 -> 0.918; docs/guide/tracking.md, "Eighth pass")."""

    def __init__(self, bins: int) -> None:
        self.shift = 8 - int(np.log2(bins))
        self.bits = int(np.log2(bins))
        self.n = bins**3
        self.fg: np.ndarray | None = None  # learnt
        self.bg: np.ndarray | None = None
        self._key_fg: np.ndarray | None = None
        self._fg_floor: np.ndarray | None = None  # max(fg, the keyframe's fg), renormalised: the posterior's

    def index(self, rgb: np.ndarray) -> np.ndarray:
        q = (rgb >> self.shift).astype(np.int32)
        return (q[..., 0] << (2 * self.bits)) | (q[..., 1] << self.bits) | q[..., 2]

    def _hist(self, idx: np.ndarray) -> np.ndarray:
        h = np.bincount(idx, minlength=self.n).astype(np.float32)
        # Spread a little mass so that unseen colours are uncertain, not impossible.
        return (h + 0.1) / (h.sum() + 0.1 * self.n)

    def fit(self, idx: np.ndarray, fg: np.ndarray, bg: np.ndarray, rate: float | None = None) -> None:
        if not fg.any() or not bg.any():
            return
        hf, hb = self._hist(idx[fg]), self._hist(idx[bg])
        if self.fg is None or rate is None:  # the keyframe's
            self.fg, self.bg, self._key_fg = hf, hb, hf
        else:
            self.fg = (1 - rate) * self.fg + rate * hf
            self.bg = (1 - rate) * self.bg + rate * hb
        floor = np.maximum(self.fg, self._key_fg)
        self._fg_floor = floor / floor.sum()

    def posterior(self, idx: np.ndarray) -> np.ndarray:
        f, b = self._fg_floor[idx], self.bg[idx]
        return f / (f + b)


def colour_hist(rgb: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Normalised 8 x 8 x 8 RGB histogram (flat, float64) of the pixels of ``rgb`` where ``where`` is true."""
    q = rgb[where] >> 5
    if len(q) == 0:
        return np.zeros(512)
    idx = (q[:, 0].astype(np.int32) << 6) | (q[:, 1].astype(np.int32) << 3) | q[:, 2]
    h = np.bincount(idx, minlength=512).astype(np.float64)
    return h / h.sum()


def agreement(rgb: np.ndarray, where: np.ndarray, ref: np.ndarray) -> float:
    """Bhattacharyya coefficient between the colours of ``rgb`` where ``where`` is true and ``ref``."""
    return float(np.sum(np.sqrt(colour_hist(rgb, where) * ref)))
