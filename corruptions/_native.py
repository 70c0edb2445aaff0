"""Numba kernels for the loops that are inherent to a corruption (compiled once, cached)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def glass_shuffle(image, offsets, max_delta):
    """In place: the original's sequential 'swap' scan, which is really a copy.

    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views sets ``x[h, w]`` to
    ``x[h', w']`` and leaves ``x[h', w']`` as it was. Rows run from ``H - d`` down to
    ``d + 1`` (outer), columns likewise (inner); ``offsets[it, i, j] = (dx, dy)``.
    """
    height, width, channels = image.shape
    d = max_delta
    for it in range(offsets.shape[0]):
        for i, h in enumerate(range(height - d, d, -1)):
            for j, w in enumerate(range(width - d, d, -1)):
                hp = h + offsets[it, i, j, 1]
                wp = w + offsets[it, i, j, 0]
                for c in range(channels):
                    image[h, w, c] = image[hp, wp, c]


@njit(cache=True, nogil=True)
def motion_blur_q16(image, dy, dx, weights):
    """ImageMagick 6 (Q16) MotionBlurImage on 8-bit data, edge virtual pixels.

    Each output pixel is sum_i weights[i] * pixel(x + dx[i], y + dy[i]) on the 16-bit
    quantum scale (8-bit value * 257), rounded to a quantum (ClampToQuantum), then
    truncated back to 8 bits, which is what ImageMagick's 8-bit PNG holds.
    """
    height, width, channels = image.shape
    rowlen = width * channels
    src = image.reshape(height, rowlen).astype(np.float64)
    acc = np.zeros(rowlen, np.float64)
    out = np.empty((height, rowlen), np.uint8)
    for y in range(height):
        acc[:] = 0.0
        for t in range(weights.shape[0]):
            k = weights[t] * 257.0
            row = src[min(max(y + dy[t], 0), height - 1)]
            shift = dx[t]
            # columns whose source x + shift lies inside the row, then the clamped edges
            lo = min(max(-shift, 0), width)
            hi = max(min(width - shift, width), lo)
            inner = acc[lo * channels:hi * channels]
            shifted = row[(lo + shift) * channels:(hi + shift) * channels]
            for j in range(inner.shape[0]):
                inner[j] += k * shifted[j]
            for x in range(0, lo):
                for c in range(channels):
                    acc[x * channels + c] += k * row[c]
            for x in range(hi, width):
                for c in range(channels):
                    acc[x * channels + c] += k * row[(width - 1) * channels + c]
        for j in range(rowlen):
            v = acc[j]
            q = 0 if v <= 0.0 else (65535 if v >= 65535.0 else int(v + 0.5))
            out[y, j] = q // 257
    return out.reshape(height, width, channels)


@njit(cache=True, nogil=True)
def poisson_lookup(image, uniforms, cdf, levels):
    """Inverse-CDF Poisson draws, quantised: ``levels[k]`` for the smallest k with u < cdf[v, k].

    ``cdf[v]`` holds P(K <= k) for k below the clipping point; draws past it take the last level.
    """
    flat = image.ravel()
    out = np.empty(flat.shape[0], np.uint8)
    m = cdf.shape[1]
    for n in range(flat.shape[0]):
        row = cdf[flat[n]]
        u = uniforms[n]
        lo, hi = 0, m  # answer in [lo, hi]; hi == m means "clipped"
        while lo < hi:
            mid = (lo + hi) // 2
            if u < row[mid]:
                hi = mid
            else:
                lo = mid + 1
        out[n] = levels[lo]
    return out.reshape(image.shape)


@njit(cache=True, nogil=True)
def hsv_adjust(image, channel, scale, offset):
    """skimage rgb2hsv, then one HSV channel = clip(channel * scale + offset, 0, 1), hsv2rgb,
    clip and truncation to uint8; float64 arithmetic in skimage's order of operations."""
    height, width, _ = image.shape
    out = np.empty((height, width, 3), np.uint8)
    for y in range(height):
        for x in range(width):
            r = image[y, x, 0] / 255.0
            g = image[y, x, 1] / 255.0
            b = image[y, x, 2] / 255.0
            v = max(r, max(g, b))
            delta = v - min(r, min(g, b))
            if delta == 0.0:
                s = 0.0
                h = 0.0
            else:
                s = delta / v
                # skimage assigns red, then green, then blue: the last match wins
                if b == v:
                    h = 4.0 + (r - g) / delta
                elif g == v:
                    h = 2.0 + (b - r) / delta
                else:
                    h = (g - b) / delta
                h = (h / 6.0) % 1.0
            if channel == 1:
                s = min(max(s * scale + offset, 0.0), 1.0)
            else:
                v = min(max(v * scale + offset, 0.0), 1.0)
            hi = np.floor(h * 6)
            f = h * 6 - hi
            p = v * (1 - s)
            q = v * (1 - f * s)
            t = v * (1 - (1 - f) * s)
            sector = int(hi) % 6
            if sector == 0:
                rr, gg, bb = v, t, p
            elif sector == 1:
                rr, gg, bb = q, v, p
            elif sector == 2:
                rr, gg, bb = p, v, t
            elif sector == 3:
                rr, gg, bb = p, q, v
            elif sector == 4:
                rr, gg, bb = t, p, v
            else:
                rr, gg, bb = v, p, q
            out[y, x, 0] = np.uint8(min(max(rr, 0.0), 1.0) * 255)
            out[y, x, 1] = np.uint8(min(max(gg, 0.0), 1.0) * 255)
            out[y, x, 2] = np.uint8(min(max(bb, 0.0), 1.0) * 255)
    return out


@njit(cache=True, nogil=True)
def _reflect_coordinate(c, n):
    """scipy.ndimage's map_coordinate for mode 'reflect' (half-sample symmetric)."""
    if c < 0.0:
        if n <= 1:
            return 0.0
        period = 2.0 * n
        if c < -period:
            c = period * int(-c / period) + c
        if c < -n:
            return c + period
        return (1e-15 if c > -1e-15 else -c) - 1.0
    if c > n - 1:
        if n <= 1:
            return 0.0
        period = 2.0 * n
        c -= period * int(c / period)
        if c >= n:
            c = period - c - 1.0
    return c


@njit(cache=True, nogil=True)
def _reflect_index(i, n):
    if n <= 1:
        return 0
    period = 2 * n
    i = i % period
    return i if i < n else period - i - 1


@njit(cache=True, nogil=True)
def bilinear_reflect(image, dy, dx):
    """``scipy.ndimage.map_coordinates(image, (y + dy, x + dx, c), order=1, mode='reflect')`` of an
    HxWxC float32 image, with scipy's arithmetic: weights (1 - t, 1 - (1 - t)), products taken
    value * weight_y * weight_x and summed in C order in float64, stored as float32."""
    height, width, channels = image.shape
    out = np.empty_like(image)
    for y in range(height):
        for x in range(width):
            cy = y + np.float64(dy[y, x])
            cx = x + np.float64(dx[y, x])
            inside = 0.0 <= cy < height - 1 and 0.0 <= cx < width - 1
            if not inside:
                cy = _reflect_coordinate(cy, height)
                cx = _reflect_coordinate(cx, width)
            fy, fx = np.floor(cy), np.floor(cx)
            wy0 = 1.0 - (cy - fy)
            wy1 = 1.0 - wy0
            wx0 = 1.0 - (cx - fx)
            wx1 = 1.0 - wx0
            y0, x0 = int(fy), int(fx)
            if inside:
                y1, x1 = y0 + 1, x0 + 1
            else:
                y1, x1 = _reflect_index(y0 + 1, height), _reflect_index(x0 + 1, width)
                y0, x0 = _reflect_index(y0, height), _reflect_index(x0, width)
            for c in range(channels):
                acc = 0.0
                acc += np.float64(image[y0, x0, c]) * wy0 * wx0
                acc += np.float64(image[y0, x1, c]) * wy0 * wx1
                acc += np.float64(image[y1, x0, c]) * wy1 * wx0
                acc += np.float64(image[y1, x1, c]) * wy1 * wx1
                out[y, x, c] = np.float32(acc)
    return out


@njit(cache=True, nogil=True)
def snow_composite(scene, flakes, turned):
    """``uint8(clip(scene + flakes + turned, 0, 1) * 255)`` with numpy's promotions: the float32
    scene (HxWx3) plus the float64 flake layers (HxW), summed left to right in float64."""
    height, width, channels = scene.shape
    out = np.empty((height, width, channels), np.uint8)
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                v = (np.float64(scene[y, x, c]) + flakes[y, x]) + turned[y, x]
                v = min(max(v, 0.0), 1.0) * 255.0
                out[y, x, c] = np.uint8(v)
    return out


@njit(cache=True, nogil=True)
def contrast_stretch(x, means, factor):
    """``uint8(clip((x - means) * factor + means, 0, 1) * 255)`` in float64, per channel means."""
    height, width, channels = x.shape
    out = np.empty((height, width, channels), np.uint8)
    for y in range(height):
        for col in range(width):
            for c in range(channels):
                v = (x[y, col, c] - means[c]) * factor + means[c]
                out[y, col, c] = np.uint8(min(max(v, 0.0), 1.0) * 255.0)
    return out


@njit(cache=True, nogil=True)
def _symmetric_nearest_rows(src, weights):
    """One scipy ``correlate1d`` pass down the first axis of a 2-D float64 array, symmetric
    kernel, mode 'nearest', in scipy's order: ``x[c] w[r]``, then ``+= (x[c - j] + x[c + j])
    w[r - j]`` for j = r down to 1 (whole rows at a time, so the loop vectorises)."""
    length, width = src.shape
    radius = weights.size // 2
    dst = np.empty_like(src)
    for y in range(length):
        centre = weights[radius]
        for x in range(width):
            dst[y, x] = src[y, x] * centre
        for j in range(radius, 0, -1):
            lo = min(max(y - j, 0), length - 1)
            hi = min(max(y + j, 0), length - 1)
            weight = weights[radius - j]
            for x in range(width):
                dst[y, x] += (src[lo, x] + src[hi, x]) * weight
    return dst


@njit(cache=True, nogil=True)
def _symmetric_nearest_across(src, weights):
    """The same pass along the second axis of an HxWxC array (channels kept apart)."""
    height, width, channels = src.shape
    radius = weights.size // 2
    dst = np.empty_like(src)
    flat_src = src.reshape(height, width * channels)
    flat_dst = dst.reshape(height, width * channels)
    centre = weights[radius]
    for y in range(height):
        row = flat_src[y]
        out = flat_dst[y]
        for i in range(width * channels):
            out[i] = row[i] * centre
        for j in range(radius, 0, -1):
            weight = weights[radius - j]
            step = j * channels
            # interior: both taps inside the row, one branch-free run (vectorises)
            first, last = min(j, width), max(width - j, min(j, width))
            for i in range(first * channels, last * channels):
                out[i] += (row[i - step] + row[i + step]) * weight
            # the edges: taps clamped to the first and last pixel ('nearest')
            for x in list(range(0, first)) + list(range(last, width)):
                lo = min(max(x - j, 0), width - 1) * channels
                hi = min(max(x + j, 0), width - 1) * channels
                for c in range(channels):
                    out[x * channels + c] += (row[lo + c] + row[hi + c]) * weight
    return dst


def gaussian_nearest_scipy(image, weights):
    """scipy ``gaussian_filter(image, (s, s, 0), mode='nearest')`` of a float64 HxWxC image, bit
    for bit: down the rows, then along them, each pass in scipy's summation order."""
    height, width, channels = image.shape
    rows = _symmetric_nearest_rows(np.ascontiguousarray(image, np.float64).reshape(height, width * channels), weights)
    return _symmetric_nearest_across(rows.reshape(height, width, channels), weights)


@njit(cache=True, nogil=True)
def _standard_normal_f32(rng, count):
    return rng.standard_normal(count, dtype=np.float32)


def standard_normal_f32(rng, shape) -> np.ndarray:
    """``rng.standard_normal(shape, dtype=np.float32)``, the same values and the same state
    after (numba's port of NumPy's float32 ziggurat; a third faster). Other generators (a
    RandomState replaying an original) take their own method."""
    if type(rng) is not np.random.Generator:
        return rng.standard_normal(shape, dtype=np.float32)
    return _standard_normal_f32(rng, int(np.prod(shape))).reshape(shape)
