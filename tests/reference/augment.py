"""Float64 NumPy references for the augment kernels: bilinear affine warp, padded crop,
colour jitter. Loops and plain formulas: clarity first."""
from __future__ import annotations

import numpy as np


def affine_warp_bilinear(x, theta, ho, wo, fill=0.0):
    """x (N, C, H, W), theta (N, 6): centred output coords -> centred input coords.
    Taps outside the image read `fill`. Returns float64 (N, C, ho, wo)."""
    x = np.asarray(x, np.float64)
    theta = np.asarray(theta, np.float64)
    n, c, h, w = x.shape
    y = np.empty((n, c, ho, wo))
    for i in range(n):
        a, b, tx, d, e, ty = theta[i]
        for r in range(ho):
            for s in range(wo):
                xc, yc = s - (wo - 1) / 2, r - (ho - 1) / 2
                u = a * xc + b * yc + tx + (w - 1) / 2
                v = d * xc + e * yc + ty + (h - 1) / 2
                x0, y0 = int(np.floor(u)), int(np.floor(v))
                fx, fy = u - x0, v - y0

                def tap(rr, ss):
                    if 0 <= rr < h and 0 <= ss < w:
                        return x[i, :, rr, ss]
                    return np.full(c, fill)

                y[i, :, r, s] = ((1 - fx) * (1 - fy) * tap(y0, x0) + fx * (1 - fy) * tap(y0, x0 + 1)
                                 + (1 - fx) * fy * tap(y0 + 1, x0) + fx * fy * tap(y0 + 1, x0 + 1))
    return y


def crop_padded(x, offsets, ho, wo, pad_top, pad_left, fill=0.0):
    """NumPy slicing of the padded array at the given (top, left) offsets."""
    x = np.asarray(x, np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (pad_top, pad_top), (pad_left, pad_left)), constant_values=fill)
    return np.stack([xp[i, :, t:t + ho, l:l + wo] for i, (t, l) in enumerate(offsets)])


def grey(img):
    """ITU-R 601-2 luma of one image (3, H, W) -> (H, W); a 1-channel image is its own grey."""
    if img.shape[0] == 1:
        return img[0]
    return 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]


def color_jitter(x, factors, brightness, contrast, saturation):
    """Brightness, contrast, saturation (in that order, each clamped to [0, 1]) per image."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        img = x[i].copy()
        fb, fc, fs = (float(v) for v in factors[i])
        if brightness:
            img = np.clip(fb * img, 0, 1)
        if contrast:
            img = np.clip(fc * img + (1 - fc) * grey(img).mean(), 0, 1)
        if saturation:
            img = np.clip(fs * img + (1 - fs) * grey(img)[None], 0, 1)
        out[i] = img
    return out
