"""Numba kernels for the loops that are inherent to a corruption (compiled once, cached)."""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.np.random._constants import fi_float, ki_float, wi_float, ziggurat_nor_inv_r_f, ziggurat_nor_r_f


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


@njit(inline="always")
def _tap_row(padded, reach, y, dy, dx, channels, rowlen):
    start = (reach + dx) * channels
    return padded[y + reach + dy, start:start + rowlen]  # a slice: the loops below vectorise


@njit(cache=True, nogil=True)
def motion_blur_q16(padded, reach, dy, dx, weights, out):
    """ImageMagick 6 (Q16) MotionBlurImage on 8-bit data, edge virtual pixels, into ``out``
    (H x W x C uint8) from ``padded``: the image as float64, edge-repeated by ``reach`` >= every
    tap offset on each side ((H + 2 reach) x (W + 2 reach) C).

    Each output pixel is sum_i weights[i] * pixel(x + dx[i], y + dy[i]) on the 16-bit
    quantum scale (8-bit value * 257), summed in tap order, rounded to a quantum
    (ClampToQuantum), then truncated back to 8 bits (q // 257 as q * 0xFF01 >> 24, equal for
    every 16-bit q), which is what ImageMagick's 8-bit PNG holds.
    """
    height, width, channels = out.shape
    rowlen = width * channels
    flat_out = out.reshape(height, rowlen)
    acc = np.empty(rowlen, np.float64)
    taps = weights.shape[0]
    for y in range(height):
        acc[:] = 0.0
        t = 0
        while t + 3 < taps:  # four taps per pass over the row, added in tap order
            r0 = _tap_row(padded, reach, y, dy[t], dx[t], channels, rowlen)
            r1 = _tap_row(padded, reach, y, dy[t + 1], dx[t + 1], channels, rowlen)
            r2 = _tap_row(padded, reach, y, dy[t + 2], dx[t + 2], channels, rowlen)
            r3 = _tap_row(padded, reach, y, dy[t + 3], dx[t + 3], channels, rowlen)
            k0, k1, k2, k3 = weights[t] * 257.0, weights[t + 1] * 257.0, weights[t + 2] * 257.0, weights[t + 3] * 257.0
            for j in range(rowlen):
                acc[j] = (((acc[j] + k0 * r0[j]) + k1 * r1[j]) + k2 * r2[j]) + k3 * r3[j]
            t += 4
        while t < taps:
            r0 = _tap_row(padded, reach, y, dy[t], dx[t], channels, rowlen)
            k0 = weights[t] * 257.0
            for j in range(rowlen):
                acc[j] += k0 * r0[j]
            t += 1
        row_out = flat_out[y]
        for j in range(rowlen):
            q = np.int32(min(max(acc[j], 0.0), 65535.0) + 0.5)
            row_out[j] = np.uint8((q * 0xFF01) >> 24)


@njit(cache=True, nogil=True)
def motion_blur_q16_sparse(padded, reach, rows, cols, dy, dx, weights, out):
    """``motion_blur_q16`` of a one-channel image whose padded form has few nonzero pixels,
    listed in ``rows``, ``cols``: each tap scatters them (taps outer), so every output pixel
    receives its nonzero terms in tap order, as the dense sum adds them; its zero terms add
    exactly 0.0. The same bytes for a fraction of the work (snow's flake layer)."""
    height, width, _ = out.shape
    total = np.zeros((height, width), np.float64)
    for t in range(weights.shape[0]):
        k = weights[t] * 257.0
        shift_y, shift_x = reach + dy[t], reach + dx[t]
        for n in range(rows.shape[0]):
            y, x = rows[n] - shift_y, cols[n] - shift_x
            if 0 <= y < height and 0 <= x < width:
                total[y, x] += k * padded[rows[n], cols[n]]
    for y in range(height):
        for x in range(width):
            q = np.int32(min(max(total[y, x], 0.0), 65535.0) + 0.5)
            out[y, x, 0] = np.uint8((q * 0xFF01) >> 24)


@njit(cache=True, nogil=True)
def poisson_lookup(image, uniforms, cdf, guide, levels):
    """Inverse-CDF Poisson draws, quantised: ``levels[k]`` for the smallest k with u < cdf[v, k].

    ``cdf[v]`` holds P(K <= k) for k below the clipping point; draws past it take the last level.
    ``guide[v, j]`` is the smallest k with ``cdf[v, k] > j / G``, where a draw u in [j / G,
    (j + 1) / G) starts its search (a step or two instead of a bisection).
    """
    flat = image.ravel()
    out = np.empty(flat.shape[0], np.uint8)
    m = cdf.shape[1]
    buckets = guide.shape[1]
    for n in range(flat.shape[0]):
        v = flat[n]
        u = uniforms[n]
        k = guide[v, min(int(u * buckets), buckets - 1)]
        while k < m and u >= cdf[v, k]:
            k += 1
        out[n] = levels[k]
    return out.reshape(image.shape)


@njit(cache=True, nogil=True)
def hsv_adjust_many(image, channel, scales, offsets):
    """skimage rgb2hsv, then for each k one HSV channel = clip(channel * scales[k] + offsets[k],
    0, 1), hsv2rgb, clip and truncation to uint8 (K x H x W x 3); float64 arithmetic in skimage's
    order of operations. Each pixel's HSV is computed once for all k."""
    height, width, _ = image.shape
    count = scales.shape[0]
    out = np.empty((count, height, width, 3), np.uint8)
    for y in range(height):
        for x in range(width):
            r = image[y, x, 0] / 255.0
            g = image[y, x, 1] / 255.0
            b = image[y, x, 2] / 255.0
            value = max(r, max(g, b))
            delta = value - min(r, min(g, b))
            if delta == 0.0:
                saturation = 0.0
                h = 0.0
            else:
                saturation = delta / value
                # skimage assigns red, then green, then blue: the last match wins
                if b == value:
                    h = 4.0 + (r - g) / delta
                elif g == value:
                    h = 2.0 + (b - r) / delta
                else:
                    h = (g - b) / delta
                h = (h / 6.0) % 1.0
            hi = np.floor(h * 6)
            f = h * 6 - hi
            sector = int(hi) % 6
            for k in range(count):
                s, v = saturation, value
                if channel == 1:
                    s = min(max(s * scales[k] + offsets[k], 0.0), 1.0)
                else:
                    v = min(max(v * scales[k] + offsets[k], 0.0), 1.0)
                p = v * (1 - s)
                q = v * (1 - f * s)
                t = v * (1 - (1 - f) * s)
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
                out[k, y, x, 0] = np.uint8(min(max(rr, 0.0), 1.0) * 255)
                out[k, y, x, 1] = np.uint8(min(max(gg, 0.0), 1.0) * 255)
                out[k, y, x, 2] = np.uint8(min(max(bb, 0.0), 1.0) * 255)
    return out


def hsv_adjust(image, channel, scale, offset):
    """``hsv_adjust_many`` with one (scale, offset)."""
    return hsv_adjust_many(image, channel, np.array([scale], np.float64), np.array([offset], np.float64))[0]


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
def snow_blend_composite(scene, grey, blend, grey_scale, grey_offset, flakes, turned):
    """``uint8(clip(x' + flakes + turned, 0, 1) * 255)``, ``x' = blend x + (1 - blend)
    max(x, grey_scale grey + grey_offset)`` in float32 (each operation rounded as numpy's
    float32 ufuncs round it), then summed with the float64 flake layers (HxW) left to right."""
    height, width, channels = scene.shape
    rest = np.float32(1.0 - blend)  # (1 - blend) is a Python float in the original, then float32
    blend = np.float32(blend)
    out = np.empty((height, width, channels), np.uint8)
    for y in range(height):
        for x in range(width):
            lifted = grey[y, x] * np.float32(grey_scale) + np.float32(grey_offset)
            for c in range(channels):
                value = scene[y, x, c]
                mixed = blend * value + rest * max(value, lifted)
                v = (np.float64(mixed) + flakes[y, x]) + turned[y, x]
                v = min(max(v, 0.0), 1.0) * 255.0
                out[y, x, c] = np.uint8(v)
    return out


@njit(cache=True, nogil=True)
def water_frame(x, bare, layer, ridges, amount, colour, out):
    """Water spatter (ImageNet-C, and each ImageNet-P frame) into ``out`` (HxWxC uint8), in the
    originals' numpy float32 steps:
    m = layer * ridges (uint8 x uint8 as float32, exact), m /= max(m), m *= amount, then
    ``uint8(clip(x + m colour, 0, 1) * 255)``. Where m is 0 that is ``bare``, the clean frame
    ``uint8(clip(x, 0, 1) * 255)`` (adding 0.0 is exact), so only the wet pixels are computed.
    False, ``out`` untouched, when max(m) is 0."""
    channels = x.shape[2]
    wet, ridge = layer.reshape(-1), ridges.reshape(-1)
    peak = 0
    for i in range(wet.shape[0]):
        peak = max(peak, np.int32(wet[i]) * np.int32(ridge[i]))  # < 2^24: exact in float32 too
    if peak == 0:
        return False
    peak, amount = np.float32(peak), np.float32(amount)
    values, target, clean = x.reshape(-1), out.reshape(-1), bare.reshape(-1)
    for j in range(target.shape[0]):
        target[j] = clean[j]
    for i in range(wet.shape[0]):
        product = np.int32(wet[i]) * np.int32(ridge[i])
        if product == 0:
            continue
        m = (np.float32(product) / peak) * amount
        for c in range(channels):
            v = values[i * channels + c] + m * colour[c]
            target[i * channels + c] = np.uint8(np.int32(min(max(v, np.float32(0)), np.float32(1)) * np.float32(255)))
    return True


@njit(cache=True, nogil=True)
def unit_channel_means(image):
    """``(image / 255.0).mean(axis=(0, 1))`` without the float64 copy, summed in NumPy's order
    for that reduction (row by row, one running sum per channel, then one division)."""
    height, width, channels = image.shape
    sums = np.zeros(channels)
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                sums[c] += image[y, x, c] / 255.0
    return sums / (height * width)


@njit(cache=True, nogil=True)
def contrast_stretch(image, means, factor):
    """``uint8(clip((image / 255 - means) * factor + means, 0, 1) * 255)`` in float64, per channel."""
    height, width, channels = image.shape
    out = np.empty((height, width, channels), np.uint8)
    for y in range(height):
        for col in range(width):
            for c in range(channels):
                v = (image[y, col, c] / 255.0 - means[c]) * factor + means[c]
                out[y, col, c] = np.uint8(min(max(v, 0.0), 1.0) * 255.0)
    return out


@njit(cache=True, nogil=True)
def _standard_normal_f32(rng, count):
    return rng.standard_normal(count, dtype=np.float32)


# NumPy's PCG64 (XSL-RR, 128-bit LCG), inlined so the ziggurat below draws without a call per
# number. Every constant is uint64: numba turns mixed signed/unsigned arithmetic into floats.
_PCG_MULT_HI = np.uint64(0x2360ED051FC65DA4)
_PCG_MULT_LO = np.uint64(0x4385DF649FCCF645)
_LOW32 = np.uint64(0xFFFFFFFF)
_U0, _U1, _U32, _U58, _U63 = np.uint64(0), np.uint64(1), np.uint64(32), np.uint64(58), np.uint64(63)


@njit(inline="always")
def _mulhi64(a, b):
    """The upper 64 bits of the 128-bit product of two uint64."""
    a_lo, a_hi, b_lo, b_hi = a & _LOW32, a >> _U32, b & _LOW32, b >> _U32
    hi_lo = a_hi * b_lo
    cross = ((a_lo * b_lo) >> _U32) + (hi_lo & _LOW32) + a_lo * b_hi
    return a_hi * b_hi + (hi_lo >> _U32) + (cross >> _U32)


@njit(inline="always")
def _pcg64_next64(state):
    """state: uint64[4] = (state high, state low, increment high, increment low), advanced in place."""
    hi, lo = state[0], state[1]
    product_lo = lo * _PCG_MULT_LO
    product_hi = _mulhi64(lo, _PCG_MULT_LO) + lo * _PCG_MULT_HI + hi * _PCG_MULT_LO
    new_lo = product_lo + state[3]
    new_hi = product_hi + state[2] + (_U1 if new_lo < product_lo else _U0)
    state[0], state[1] = new_hi, new_lo
    mixed, rotation = new_hi ^ new_lo, new_hi >> _U58
    return (mixed >> rotation) | (mixed << ((_U0 - rotation) & _U63))


@njit(inline="always")
def _pcg64_next32(state, spare):
    """NumPy's ``pcg64_next32``: the low half of a fresh 64-bit draw, keeping the high half
    (``spare`` = (has_uint32, uinteger)) for the next call."""
    if spare[0] != _U0:
        spare[0] = _U0
        return np.uint32(spare[1])
    draw = _pcg64_next64(state)
    spare[0], spare[1] = _U1, draw >> _U32
    return np.uint32(draw & _LOW32)


@njit(inline="always")
def _pcg64_next_float(state, spare):
    return np.float32(np.float32(_pcg64_next32(state, spare) >> 8) * np.float32(1.0) / np.float32(16777216.0))


@njit(cache=True, nogil=True)
def _standard_normal_f32_pcg64(state, spare, count):
    """NumPy's ``random_standard_normal_f`` (float32 ziggurat, 256 layers) ``count`` times."""
    out = np.empty(count, np.float32)
    for k in range(count):
        while True:
            r = _pcg64_next32(state, spare)
            idx = r & 0xff
            rabs = (r >> 9) & 0x0007fffff
            x = np.float32(np.float32(rabs) * wi_float[idx])
            if (r >> 8) & 0x1:
                x = -x
            if rabs < ki_float[idx]:
                break  # 99.3% of draws
            if idx == 0:  # the tail
                while True:
                    xx = np.float32(-ziggurat_nor_inv_r_f * np.log1p(np.float32(-_pcg64_next_float(state, spare))))
                    yy = np.float32(-np.log1p(np.float32(-_pcg64_next_float(state, spare))))
                    if np.float32(yy + yy) > np.float32(xx * xx):
                        break
                x = np.float32(ziggurat_nor_r_f + xx)
                if (rabs >> 8) & 0x1:
                    x = -x
                break
            if ((fi_float[idx - 1] - fi_float[idx]) * _pcg64_next_float(state, spare) + fi_float[idx]) < \
                    np.float32(np.exp(-np.float32(0.5) * x * x)):
                break
        out[k] = x
    return out


def _with_pcg64_state(bit_generator: np.random.PCG64, draw, *args) -> np.ndarray:
    """``draw(state, spare, *args)`` on a copy of the generator's state, written back after."""
    words = bit_generator.state
    mask = (1 << 64) - 1
    pcg = words["state"]
    state = np.array([pcg["state"] >> 64, pcg["state"] & mask, pcg["inc"] >> 64, pcg["inc"] & mask], np.uint64)
    spare = np.array([words["has_uint32"], words["uinteger"]], np.uint64)
    out = draw(state, spare, *args)
    pcg["state"] = (int(state[0]) << 64) | int(state[1])
    words["has_uint32"], words["uinteger"] = int(spare[0]), int(spare[1])
    bit_generator.state = words
    return out


def _pcg64(rng) -> bool:
    return type(rng) is np.random.Generator and type(rng.bit_generator) is np.random.PCG64


def standard_normal_f32(rng, shape) -> np.ndarray:
    """``rng.standard_normal(shape, dtype=np.float32)``: the same values, and the generator left
    where NumPy would leave it. With PCG64 (what rng_for makes) the bit generator runs inlined in
    the ziggurat, three times NumPy's speed; other bit generators take numba's port, and other
    objects (a RandomState replaying an original) their own method. (Plain uniform draws gain
    nothing this way: NumPy's fill loop is as fast as the inlined generator.)"""
    if type(rng) is not np.random.Generator:
        return rng.standard_normal(shape, dtype=np.float32)
    count = int(np.prod(shape))
    if _pcg64(rng):
        return _with_pcg64_state(rng.bit_generator, _standard_normal_f32_pcg64, count).reshape(shape)
    return _standard_normal_f32(rng, count).reshape(shape)


@njit(cache=True, nogil=True)
def plasma_level(grid, step, wibble, squares_draws, across_draws, down_draws):
    """One diamond-square level of the originals' ``plasma_fractal``, in place, with NumPy's
    order of operations (``np.roll`` wraps around; sums left to right as the original writes
    them): squares ``((c[i,j] + c[i+1,j]) + (c[i,j+1] + c[i+1,j+1])) / 4 + wibble u``, then
    the two edge midpoints from the new centres and the corners."""
    half = step // 2
    m = grid.shape[0] // step
    for i in range(m):
        for j in range(m):
            i1, j1 = (i + 1) % m, (j + 1) % m
            total = (grid[i * step, j * step] + grid[i1 * step, j * step]) + \
                (grid[i * step, j1 * step] + grid[i1 * step, j1 * step])
            grid[i * step + half, j * step + half] = total / 4 + wibble * squares_draws[i, j]
    for i in range(m):
        for j in range(m):
            i0, j1 = (i - 1) % m, (j + 1) % m
            total = grid[i * step + half, j * step + half] + grid[i0 * step + half, j * step + half] + \
                grid[i * step, j * step] + grid[i * step, j1 * step]
            grid[i * step, j * step + half] = total / 4 + wibble * across_draws[i, j]
    for i in range(m):
        for j in range(m):
            j0, i1 = (j - 1) % m, (i + 1) % m
            total = grid[i * step + half, j * step + half] + grid[i * step + half, j0 * step + half] + \
                grid[i * step, j * step] + grid[i1 * step, j * step]
            grid[i * step + half, j * step] = total / 4 + wibble * down_draws[i, j]


@njit(cache=True, nogil=True)
def fog_composite(image, fractal, strength):
    """``uint8(clip((image / 255 + strength f) peak / (peak + strength), 0, 1) * 255)`` in
    float64, ``peak`` the image's maximum over 255."""
    height, width, channels = image.shape
    peak = 0.0
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                peak = max(peak, image[y, x, c] / 255.0)
    out = np.empty((height, width, channels), np.uint8)
    for y in range(height):
        for x in range(width):
            lift = strength * fractal[y, x]
            for c in range(channels):
                v = (image[y, x, c] / 255.0 + lift) * peak / (peak + strength)
                out[y, x, c] = np.uint8(min(max(v, 0.0), 1.0) * 255.0)
    return out


@njit(cache=True, nogil=True)
def _linear_zoom_taps(length, out_length, first, count):
    """Per output index ``first + k`` of scipy's ``zoom_shift`` (order 1, grid_mode False, mode
    'constant') along one axis: the two input taps (the upper one mirrored at the far edge), their
    weights ``w0 = 1 - frac``, ``w1 = 1 - w0`` as scipy computes them, and whether it lies inside."""
    zoom = (length - 1) / (out_length - 1) if out_length > 1 else 1.0
    lower = np.zeros(count, np.int64)
    upper = np.zeros(count, np.int64)
    w0 = np.zeros(count)
    w1 = np.zeros(count)
    inside = np.zeros(count, np.bool_)
    for k in range(count):
        cc = float(first + k) * zoom
        if cc < 0 or cc > length - 1:
            continue  # 'constant': cval 0
        start = np.floor(cc)
        inside[k] = True
        w0[k] = 1.0 - (cc - start)
        w1[k] = 1.0 - w0[k]
        lower[k] = int(start)
        tap = lower[k] + 1
        if length <= 1:
            tap = 0
        elif tap >= length:
            tap = 2 * length - 2 - tap
        upper[k] = tap
    return lower, upper, w0, w1, inside


@njit(cache=True, nogil=True)
def linear_zoom_window(src, out_height, out_width, top, left, rows, cols):
    """Rows ``top..top+rows`` and columns ``left..left+cols`` of ``scipy.ndimage.zoom(src, order=1)``
    whose full output is ``out_height x out_width`` (2-D float64): each value summed over the four
    taps in scipy's order, ``t += (v * wy) * wx``."""
    y0, y1, wy0, wy1, y_in = _linear_zoom_taps(src.shape[0], out_height, top, rows)
    x0, x1, wx0, wx1, x_in = _linear_zoom_taps(src.shape[1], out_width, left, cols)
    out = np.zeros((rows, cols))
    for i in range(rows):
        if not y_in[i]:
            continue
        for j in range(cols):
            if not x_in[j]:
                continue
            t = 0.0
            t += src[y0[i], x0[j]] * wy0[i] * wx0[j]
            t += src[y0[i], x1[j]] * wy0[i] * wx1[j]
            t += src[y1[i], x0[j]] * wy1[i] * wx0[j]
            t += src[y1[i], x1[j]] * wy1[i] * wx1[j]
            out[i, j] = t
    return out


@njit(cache=True, nogil=True)
def salt_and_pepper(image, flip, salt, amount, salt_share):
    """A copy of ``image`` with each value where ``flip <= amount`` set to 255 where
    ``salt <= salt_share``, else to 0 (float32 draws and thresholds)."""
    out = image.copy()
    flat, flips, salts = out.reshape(-1), flip.reshape(-1), salt.reshape(-1)
    for n in range(flat.shape[0]):
        if flips[n] <= amount:
            flat[n] = 255 if salts[n] <= salt_share else 0
    return out


# Filters and warps with every rounding fixed. OpenCV's float filters and warps round differently
# on CPUs with and without AVX2 / FMA (its dispatched SIMD code), and OpenBLAS's products with each
# CPU's kernel; these loops add in one stated order and never fuse a multiply with an add (numba
# does not contract), so they give the same bits on any x86-64 (tests/unit/test_cpu_independence).

@njit(inline="always")
def _edge_index(i, n, reflect):
    """Index ``i`` of a length-``n`` line extended by scipy's mode 'reflect' (half-sample
    symmetric) or 'nearest' (edge repeated)."""
    if 0 <= i < n:
        return i
    if reflect:
        return _reflect_index(i, n)
    return 0 if i < 0 else n - 1


@njit(cache=True, nogil=True)
def correlate_down(source, weights, reflect, out):
    """scipy ``correlate1d`` of a symmetric kernel down the rows of ``source`` (H x N float64) into
    ``out``, mode 'reflect' or 'nearest', in scipy's order: ``x[c] w[r]``, then ``+= (x[c - j] +
    x[c + j]) w[r - j]`` for j = r down to 1 (whole rows at a time, so the loops vectorise)."""
    height, length = source.shape
    radius = weights.size // 2
    centre = weights[radius]
    for y in range(height):
        target, here = out[y], source[y]
        for i in range(length):
            target[i] = here[i] * centre
        for j in range(radius, 0, -1):
            above = source[_edge_index(y - j, height, reflect)]
            beneath = source[_edge_index(y + j, height, reflect)]
            weight = weights[radius - j]
            for i in range(length):
                target[i] += (above[i] + beneath[i]) * weight


@njit(cache=True, nogil=True)
def correlate_across(source, weights, channels, reflect, out):
    """The same pass along each row of ``source`` (H x W*C float64, channels kept apart) into
    ``out``."""
    height, length = source.shape
    width = length // channels
    radius = weights.size // 2
    centre = weights[radius]
    for y in range(height):
        row, total = source[y], out[y]
        for i in range(length):
            total[i] = row[i] * centre
        for j in range(radius, 0, -1):
            weight = weights[radius - j]
            step = j * channels
            first, last = min(j, width), max(width - j, min(j, width))
            inner = total[first * channels:last * channels]  # both taps inside the row; slices
            before = row[first * channels - step:last * channels - step]  # keep the loop vectorised
            after = row[first * channels + step:last * channels + step]
            for i in range(inner.shape[0]):
                inner[i] += (before[i] + after[i]) * weight
            for x in range(width - last + first):  # the edges: taps extended by the mode
                x = x if x < first else last + x - first
                left = _edge_index(x - j, width, reflect) * channels
                right = _edge_index(x + j, width, reflect) * channels
                for c in range(channels):
                    total[x * channels + c] += (row[left + c] + row[right + c]) * weight


@njit(inline="always")
def _add_four(target, s0, s1, s2, s3, w0, w1, w2, w3):
    """``target += s0 w0``, then ``+= s1 w1``, ``+= s2 w2``, ``+= s3 w3``, each element in that
    order: the same operations as four passes, with a quarter of the loads and stores."""
    for j in range(target.shape[0]):
        target[j] = (((target[j] + s0[j] * w0) + s1[j] * w1) + s2[j] * w2) + s3[j] * w3


@njit(cache=True, nogil=True)
def ordered_matmul(a, b):
    """``a @ b`` (float64) summed over k in ascending order: ``((0 + a[i, 0] b[0]) + a[i, 1] b[1])
    + ...`` for every element. Four rows of ``a`` and four k at a time share their loads (the
    same operations in the same order per element)."""
    rows, inner = a.shape
    out = np.zeros((rows, b.shape[1]), np.float64)
    full = rows - rows % 4
    for i in range(0, full, 4):
        t0, t1, t2, t3 = out[i], out[i + 1], out[i + 2], out[i + 3]
        r0, r1, r2, r3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        k = 0
        while k + 4 <= inner:
            b0, b1, b2, b3 = b[k], b[k + 1], b[k + 2], b[k + 3]
            w00, w01, w02, w03 = r0[k], r0[k + 1], r0[k + 2], r0[k + 3]
            w10, w11, w12, w13 = r1[k], r1[k + 1], r1[k + 2], r1[k + 3]
            w20, w21, w22, w23 = r2[k], r2[k + 1], r2[k + 2], r2[k + 3]
            w30, w31, w32, w33 = r3[k], r3[k + 1], r3[k + 2], r3[k + 3]
            for j in range(out.shape[1]):
                v0, v1, v2, v3 = b0[j], b1[j], b2[j], b3[j]
                t0[j] = (((t0[j] + v0 * w00) + v1 * w01) + v2 * w02) + v3 * w03
                t1[j] = (((t1[j] + v0 * w10) + v1 * w11) + v2 * w12) + v3 * w13
                t2[j] = (((t2[j] + v0 * w20) + v1 * w21) + v2 * w22) + v3 * w23
                t3[j] = (((t3[j] + v0 * w30) + v1 * w31) + v2 * w32) + v3 * w33
            k += 4
        for k in range(k, inner):  # noqa: B020 - the rows the four-row loop left
            for target, weights in ((t0, r0), (t1, r1), (t2, r2), (t3, r3)):
                _add_four(target, b[k], b[k], b[k], b[k], weights[k], 0.0, 0.0, 0.0)
    for i in range(full, rows):
        target, weights = out[i], a[i]
        for k in range(inner):
            _add_four(target, b[k], b[k], b[k], b[k], weights[k], 0.0, 0.0, 0.0)
    return out


@njit(cache=True, nogil=True)
def correlate2d_taps(padded, rows, cols, weights, height, width, channels):
    """``sum_t weights[t] padded[y + rows[t], x + cols[t]]`` (float64) for each output pixel of an
    H x W x C image, taps added in the given order to 0; ``padded`` is the image already extended
    ((H + 2r) x (W + 2r) C)."""
    out = np.zeros((height, width * channels), np.float64)
    length = width * channels
    taps = weights.shape[0]
    for y in range(height):
        target = out[y]
        t = 0
        while t + 4 <= taps:
            s0 = padded[y + rows[t], cols[t] * channels:cols[t] * channels + length]
            s1 = padded[y + rows[t + 1], cols[t + 1] * channels:cols[t + 1] * channels + length]
            s2 = padded[y + rows[t + 2], cols[t + 2] * channels:cols[t + 2] * channels + length]
            s3 = padded[y + rows[t + 3], cols[t + 3] * channels:cols[t + 3] * channels + length]
            _add_four(target, s0, s1, s2, s3, weights[t], weights[t + 1], weights[t + 2], weights[t + 3])
            t += 4
        for t in range(t, taps):  # noqa: B020 - the taps the four-tap loop left
            source = padded[y + rows[t], cols[t] * channels:cols[t] * channels + length]
            _add_four(target, source, source, source, source, weights[t], 0.0, 0.0, 0.0)
    return out


@njit(cache=True, nogil=True)
def linear_zoom_window_channels(src, out_height, out_width, top, left, rows, cols):
    """``linear_zoom_window`` of each channel of an H x W x C float32 image (scipy's order-1 zoom
    by (z, z, 1): the channel axis is taken as it is), stored as float32 (scipy's output for a
    float32 input). Every tap of the window lies inside the source (``scipy_clipped_zoom``'s)."""
    y0, y1, wy0, wy1, _ = _linear_zoom_taps(src.shape[0], out_height, top, rows)
    x0, x1, wx0, wx1, _ = _linear_zoom_taps(src.shape[1], out_width, left, cols)
    channels = src.shape[2]
    length = cols * channels
    lower_at, upper_at = np.empty(length, np.int64), np.empty(length, np.int64)
    lower_weight, upper_weight = np.empty(length), np.empty(length)
    for j in range(cols):  # the taps and weights of each output value along a row
        for c in range(channels):
            lower_at[j * channels + c], upper_at[j * channels + c] = x0[j] * channels + c, x1[j] * channels + c
            lower_weight[j * channels + c], upper_weight[j * channels + c] = wx0[j], wx1[j]
    out = np.empty((rows, cols, channels), np.float32)
    first_row, second_row = np.empty(src.shape[1] * channels), np.empty(src.shape[1] * channels)
    for i in range(rows):
        a, b = src[y0[i]].reshape(-1), src[y1[i]].reshape(-1)
        for k in range(a.shape[0]):  # (v * wy) of both rows, once per source value
            first_row[k] = np.float64(a[k]) * wy0[i]
            second_row[k] = np.float64(b[k]) * wy1[i]
        target = out[i].reshape(-1)
        for k in range(length):  # t = 0, then += (v * wy) * wx over the taps in scipy's order
            p, q, u, v = lower_at[k], upper_at[k], lower_weight[k], upper_weight[k]
            target[k] = np.float32((((0.0 + first_row[p] * u) + first_row[q] * v) + second_row[p] * u)
                                   + second_row[q] * v)
    return out
