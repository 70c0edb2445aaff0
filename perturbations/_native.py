"""Numba loops of ImageNet-P's kernels (compiled once, cached). Loops shared with ImageNet-C
(motion blur, the HSV round trip, water spatter) live in ``corruptions.native``."""
from __future__ import annotations

import numpy as np
from numba import njit

from corruptions import native as shared

_U1, _U3, _U11, _U24, _U32, _U40 = (np.uint64(k) for k in (1, 3, 11, 24, 32, 40))
_LOW32 = np.uint64(0xFFFFFFFF)
_FRACTION_BITS = 24  # a 32-bit word: 8 bits pick an alias column, 24 bits decide within it
_COLUMN_CAPACITY = 1 << _FRACTION_BITS
_LOW24 = np.uint32(_COLUMN_CAPACITY - 1)
_S8, _S24 = np.uint32(8), np.uint32(24)


@njit(inline="always")
def _level(value, word, table):
    """The output level of input level ``value`` for one 32-bit draw: column = the top 8 bits,
    kept if the low 24 bits fall under its threshold, else its alias (``alias_entries``)."""
    column = word >> _S24
    entry = table[(np.uint32(value) << _S8) | column]
    return np.uint8(column) if (word & _LOW24) < (entry >> _S8) else np.uint8(entry)


@njit(cache=True, nogil=True)
def sample_levels(values, table, state, out, little_endian):
    """Levels drawn for the input levels ``values``, position by position: position k takes
    the next ceil(F / 2) SFC64 words, and word j gives frame 2j (from its low 32 bits) and
    frame 2j + 1 (its high 32 bits; unused past the last frame). ``out[k, j]`` (uint16, n x
    ceil(F / 2)) holds that pair of levels, frame 2j in the first byte in memory, so ``out``
    viewed as bytes is n x frames. ``state`` (a, b, c, counter) is advanced in place."""
    a, b, c, counter = state[0], state[1], state[2], state[3]
    n, pairs = out.shape
    first, second = (np.uint16(0), np.uint16(8)) if little_endian else (np.uint16(8), np.uint16(0))
    for k in range(n):  # one input level at a time: one row of the table, in cache
        value = values[k]
        draws = out[k]
        for j in range(pairs):
            word = a + b + counter  # NumPy's SFC64 step, the state kept in registers
            a, b, c = b ^ (b >> _U11), c + (c << _U3), ((c << _U24) | (c >> _U40)) + word
            counter += _U1
            even = np.uint16(_level(value, np.uint32(word & _LOW32), table))
            odd = np.uint16(_level(value, np.uint32(word >> _U32), table))
            draws[j] = (even << first) | (odd << second)
    state[0], state[1], state[2], state[3] = a, b, c, counter


@njit(cache=True, nogil=True)
def alias_entries(weights):
    """Walker's alias tables (Vose's construction, exact in integers) for each row of
    ``weights`` (R x 256 int64, each row summing to 2^32): entry ``(threshold << 8) | alias``
    per column, so that a column drawn uniformly keeps its own level with probability
    threshold / 2^24 and gives ``alias`` otherwise; level L then has probability
    ``weights[r, L] / 2^32`` exactly. Full columns store threshold 2^24 - 1 and alias itself."""
    rows, width = weights.shape
    out = np.empty((rows, width), np.uint32)
    small = np.empty(width, np.int64)
    large = np.empty(width, np.int64)
    for r in range(rows):
        left = weights[r].copy()
        threshold = np.full(width, _COLUMN_CAPACITY, np.int64)
        alias = np.arange(width)
        n_small = n_large = 0
        for level in range(width):
            if left[level] < _COLUMN_CAPACITY:
                small[n_small] = level
                n_small += 1
            else:
                large[n_large] = level
                n_large += 1
        while n_small > 0 and n_large > 0:
            n_small -= 1
            short = small[n_small]
            donor = large[n_large - 1]
            threshold[short] = left[short]
            alias[short] = donor
            left[donor] -= _COLUMN_CAPACITY - left[short]
            if left[donor] < _COLUMN_CAPACITY:
                n_large -= 1
                small[n_small] = donor
                n_small += 1
        for i in range(n_small):
            if left[small[i]] != _COLUMN_CAPACITY:
                raise ValueError("alias_entries: a row does not sum to 2^32")
        for i in range(n_large):
            if left[large[i]] != _COLUMN_CAPACITY:
                raise ValueError("alias_entries: a row does not sum to 2^32")
        for level in range(width):
            if threshold[level] >= _COLUMN_CAPACITY:
                threshold[level], alias[level] = _COLUMN_CAPACITY - 1, level
            out[r, level] = np.uint32((threshold[level] << 8) | alias[level])
    return out


@njit(cache=True, nogil=True)
def snow_frames(scene, flakes, turned, out):
    """``out[i] = uint8(clip(scene + s_i + t_i, 0, 1) * 255)`` with s_i = flakes[i] / 255 and
    t_i = turned[i] / 255 (F x H x W uint8 layers), summed left to right in float64 as numpy
    adds the original's float64 arrays (scene: H x W x C float64). Where both layers are 0 the
    sum is the scene itself (adding 0.0 is exact): that row is made once for every frame."""
    frames, height, width = flakes.shape
    channels = scene.shape[2]
    rowlen = width * channels
    scene_rows = scene.reshape(height, rowlen)
    out_rows = out.reshape(frames, height, rowlen)
    bare = np.empty(rowlen, np.uint8)
    for y in range(height):  # frames inner: the scene's row stays in cache
        row = scene_rows[y]
        for j in range(rowlen):
            bare[j] = np.uint8(np.int32(min(max(row[j], 0.0), 1.0) * 255.0))
        for i in range(frames):
            target = out_rows[i, y]
            target[:] = bare
            for x in range(width):
                if flakes[i, y, x] == 0 and turned[i, y, x] == 0:
                    continue
                s = flakes[i, y, x] / 255.0
                t = turned[i, y, x] / 255.0
                for c in range(channels):
                    v = (row[x * channels + c] + s) + t
                    target[x * channels + c] = np.uint8(np.int32(min(max(v, 0.0), 1.0) * 255.0))


_BYTE_VALUES = np.arange(256, dtype=np.float64)  # uint8 -> float64 by lookup: faster than converting here


@njit(cache=True, nogil=True)
def pil_affine_bilinear(image, coefficients, top, left, out):
    """Rows ``top..`` and columns ``left..`` (as many as ``out`` holds: F x h x w x 3) of Pillow's
    ``Image.transform(size, AFFINE, a, BILINEAR)`` of an HxWx3 uint8 image, for each row ``a`` of
    ``coefficients`` (F x 6): output pixel (x, y) samples the input at ``(a0 X + a1 Y + a2,
    a3 X + a4 Y + a5)``, X = x + 0.5, Y = y + 0.5; outside [0, W) x [0, H) it is black; inside,
    Pillow's bilinear filter in float64 (``v = a + (b - a) d`` along x on two rows, then along
    y; taps clamped to the edge, a missing next row repeats the row), truncated to uint8.
    Maps without rotation or shear (a1 = a3 = 0: a scale) take the separable path."""
    for f in range(coefficients.shape[0]):
        if coefficients[f, 1] == 0.0 and coefficients[f, 3] == 0.0:
            _affine_separable(image, coefficients[f], top, left, out[f])
        else:
            _affine_general(image, coefficients[f], top, left, out[f])


@njit(cache=True, nogil=True)
def _affine_general(image, a, top, left, out):
    height, width, _ = image.shape
    out_h, out_w, _ = out.shape
    source = image.reshape(-1)
    stride = width * 3
    values = _BYTE_VALUES
    a0x = np.empty(out_w)
    a3x = np.empty(out_w)
    one, two = np.uint64(1), np.uint64(2)
    for x in range(out_w):  # the products Pillow forms for every pixel, once per column
        a0x[x] = a[0] * ((left + x) + 0.5)
        a3x[x] = a[3] * ((left + x) + 0.5)
    for y in range(out_h):
        a1y = a[1] * ((top + y) + 0.5)
        a4y = a[4] * ((top + y) + 0.5)
        target = out[y].reshape(-1)
        for x in range(out_w):
            xin = a0x[x] + a1y + a[2]
            yin = a3x[x] + a4y + a[5]
            at = np.uint64(3 * x)  # unsigned indices: no negative-index wraparound code
            if not (xin >= 0.0 and xin < width and yin >= 0.0 and yin < height):
                target[at] = target[at + one] = target[at + two] = 0
                continue
            xin -= 0.5
            yin -= 0.5
            x_floor = np.floor(xin)
            y_floor = np.floor(yin)
            dx = xin - x_floor
            dy = yin - y_floor
            xi, yi = np.int64(x_floor), np.int64(y_floor)
            row = max(yi, 0)
            below = yi + 1 if yi + 1 < height else row  # no next row: the row again
            upper, lower = np.uint64(row * stride), np.uint64(below * stride)
            x0, x1 = np.uint64(3 * max(xi, 0)), np.uint64(3 * min(xi + 1, width - 1))
            for k in (np.uint64(0), one, two):
                a_ = values[source[upper + x0 + k]]
                v1 = a_ + (values[source[upper + x1 + k]] - a_) * dx
                a_ = values[source[lower + x0 + k]]
                v2 = a_ + (values[source[lower + x1 + k]] - a_) * dx
                target[at + k] = np.uint8(np.int32(v1 + (v2 - v1) * dy))


@njit(cache=True, nogil=True)
def _along_row(source, start, x0, x1, dx, inside, target):
    """Pillow's first step, ``v = a + (b - a) dx``, for every output column of one input row."""
    values = _BYTE_VALUES
    for x in range(x0.shape[0]):
        if inside[x]:
            for k in range(3):
                a = values[source[np.uint64(start + x0[x] + k)]]
                target[3 * x + k] = a + (values[source[np.uint64(start + x1[x] + k)]] - a) * dx[x]


@njit(cache=True, nogil=True)
def _affine_separable(image, a, top, left, out):
    """``_affine_general`` where a1 = a3 = 0: the x terms depend on the column alone, the y terms
    on the row alone (a1 Y and a3 X are zeros, which change no sum), so each input row's step
    along x is made once and shared by the output rows that read it; the same arithmetic."""
    height, width, _ = image.shape
    out_h, out_w, _ = out.shape
    source = image.reshape(-1)
    stride = width * 3
    x0 = np.empty(out_w, np.int64)
    x1 = np.empty(out_w, np.int64)
    dx = np.empty(out_w)
    inside = np.empty(out_w, np.bool_)
    a1y, a3x = a[1] * (top + 0.5), a[3] * (left + 0.5)
    for x in range(out_w):
        xin = a[0] * ((left + x) + 0.5) + a1y + a[2]
        inside[x] = xin >= 0.0 and xin < width
        xin -= 0.5
        x_floor = np.floor(xin)
        dx[x] = xin - x_floor
        xi = np.int64(x_floor)
        x0[x], x1[x] = 3 * max(xi, 0), 3 * min(xi + 1, width - 1)
    rows = np.zeros((2, out_w * 3))  # the two input rows' steps along x: the upper, the lower
    held = np.array([-1, -1])
    for y in range(out_h):
        target = out[y].reshape(-1)
        yin = a3x + a[4] * ((top + y) + 0.5) + a[5]
        if not (yin >= 0.0 and yin < height):
            target[:] = 0
            continue
        yin -= 0.5
        y_floor = np.floor(yin)
        dy = yin - y_floor
        yi = np.int64(y_floor)
        row = max(yi, 0)
        below = yi + 1 if yi + 1 < height else row  # no next row: the row again
        for slot, wanted in ((0, row), (1, below)):
            if held[slot] != wanted:
                if held[1 - slot] == wanted:
                    rows[slot] = rows[1 - slot]
                else:
                    _along_row(source, wanted * stride, x0, x1, dx, inside, rows[slot])
                held[slot] = wanted
        upper, lower = rows[0], rows[1]
        for j in range(out_w * 3):  # then along y: one vectorised pass
            target[j] = np.uint8(np.int32(upper[j] + (lower[j] - upper[j]) * dy))
        for x in range(out_w):
            if not inside[x]:
                target[3 * x] = target[3 * x + 1] = target[3 * x + 2] = 0


@njit(cache=True, nogil=True)
def running_means(first, zooms, out):
    """``out[0] = first``; ``out[i]`` = trunc(255 * mean of first and zooms[:i]) with torchvision's
    float32 arithmetic: total += uint8 / 255 (a float32 division), (total / (i + 1)) * 255."""
    count = first.size
    total = np.empty(count, np.float32)
    start = first.reshape(-1)
    out[0] = first
    for j in range(count):
        total[j] = np.float32(start[j]) / np.float32(255)
    for i in range(zooms.shape[0]):
        zoomed = zooms[i].reshape(-1)
        frame = out[i + 1].reshape(-1)
        divisor = np.float32(i + 2)
        for j in range(count):
            total[j] += np.float32(zoomed[j]) / np.float32(255)
            frame[j] = np.uint8(np.int32((total[j] / divisor) * np.float32(255)))


@njit(cache=True, nogil=True)
def gaussian_blur_levels(image, weights, out):
    """``uint8(255 gaussian_filter(image, (s, s, 0), mode='nearest'))`` of a float64 HxWxC image
    (scipy's passes bit for bit: down the rows, then along them) into ``out`` (HxWxC uint8);
    ``weights`` is the normalised 1-D kernel."""
    height, width, channels = image.shape
    source = image.reshape(height, width * channels)
    down = np.empty_like(source)
    shared.correlate_down(source, weights, False, down)
    across = np.empty_like(source)
    shared.correlate_across(down, weights, channels, False, across)
    levels = out.reshape(height, -1)
    for y in range(height):
        for i in range(width * channels):
            levels[y, i] = np.uint8(np.int32(255 * across[y, i]))


@njit(cache=True, nogil=True)
def drip(liquid, kernel, out):
    """Every column of ``liquid`` (H x W float64) convolved with ``kernel`` as
    ``np.convolve(column, kernel, mode='same')`` computes it (zeros beyond the ends; a
    correlation with the reversed kernel, summed from its first tap; the zero taps beyond the
    ends, which numpy adds, change no sum) into ``out``."""
    height, width = liquid.shape
    size = kernel.shape[0]
    shift = size - 1 - (size - 1) // 2  # 'same' keeps the full convolution's centre
    for y in range(height):
        target = out[y]
        target[:] = 0.0
        for tap in range(size):
            source_row = y + tap - shift
            if 0 <= source_row < height:
                weight = kernel[size - 1 - tap]
                source = liquid[source_row]
                for col in range(width):
                    target[col] += source[col] * weight
