"""Turn a photo or drawing of one digit into a 28x28 MNIST-style image, the way MNIST was made.

MNIST's digits are bright ink on black, scaled (keeping the aspect ratio) into a 20x20 box and
placed so that their centre of mass sits at the centre of the 28x28 field. People's images are
dark ink on paper or light ink on a dark screen, any size, off-centre, with or without alpha. This
is the one place that bridges the two: the upload endpoint, the web page (which uploads its
canvas) and training's evaluation of uploads all go through `to_mnist`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

SIDE, BOX = 28, 20
WORK_SIDE = 512  # images are shrunk to at most this before the work (the result is 20 px anyway)
INK_THRESHOLD = 0.1  # of the strongest ink: fainter pixels do not count for the crop
MIN_CONTRAST = 24.0  # grey levels between paper and ink below which we see no digit


class NoDigit(ValueError):
    """The image holds no visible ink."""


def _grey(img: Image.Image) -> np.ndarray:
    """Greyscale 0-255 float; transparent areas become the paper behind the ink."""
    img = ImageOps.exif_transpose(img) or img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return np.asarray(img.convert("L"), dtype=np.float32)
    rgba = img.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    grey = np.asarray(rgba.convert("L"), dtype=np.float32)
    opaque = alpha > 0.5
    if opaque.all() or not opaque.any():
        return grey if opaque.any() else alpha * 255.0
    # Drawn on a transparent sheet: put paper of the opposite shade behind the ink.
    paper = 255.0 if grey[opaque].mean() < 128 else 0.0
    return grey * alpha + paper * (1.0 - alpha)


def to_mnist(img: Image.Image) -> np.ndarray:
    """One digit image -> (28, 28) float32, bright ink on black, 0-255, centred like MNIST."""
    img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    grey = _grey(img)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    ink = grey - paper if paper < 128 else paper - grey  # polarity: ink is what differs
    ink = np.clip(ink, 0.0, None)
    strongest = float(ink.max())
    if strongest < MIN_CONTRAST:
        raise NoDigit("no digit found: the image has no visible ink")
    ink *= 255.0 / strongest

    rows = np.flatnonzero((ink > INK_THRESHOLD * 255).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD * 255).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(
        Image.fromarray(crop, mode="F").resize(size, Image.Resampling.LANCZOS), dtype=np.float32
    )
    small = np.clip(small, 0.0, 255.0)
    if small.max() > 0:
        small *= 255.0 / small.max()

    # Place so the centre of mass lands on pixel (14, 14), as in MNIST.
    ys, xs = np.indices(small.shape)
    mass = small.sum()
    cy, cx = (ys * small).sum() / mass, (xs * small).sum() / mass
    top = round(SIDE / 2 - cy)
    left = round(SIDE / 2 - cx)
    top = min(max(top, 0), SIDE - small.shape[0])
    left = min(max(left, 0), SIDE - small.shape[1])
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return np.round(out)
