"""ImageNet-C-bar and CIFAR-10-C-bar kernels (Mintun, Kirillov & Xie 2021), vectorised.

Each function is the original's ``transform(image, **params)`` (``imagenet_c_bar/corrupt.py`` of
facebookresearch/augmentation-corruption) computed over the whole pixel grid at once, with the
original's operations in the original's order, so that fed the original's parameters it gives
the original's bytes (``tests/fidelity/test_bar_golden.py``). The original loops over pixels in
Python; the grid is ``y`` (rows) by ``x`` (columns), ``im_size`` square. Steps whose rounding the
original left to the CPU (OpenBLAS's fused ``np.linalg.norm`` of 2-vectors) are fixed
(``fixed_float.fma64``). Where a parameter is an integer ``seed``, the original drew further
numbers inside ``transform`` from ``np.random.RandomState(seed)``: so do these (a local
generator made from a drawn value, never numpy's global one).
"""
from __future__ import annotations

import numpy as np
from numba import njit
from scipy.fftpack import ifft2

from ..fixed_float import fma64


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) integer coordinates of every pixel, rows first."""
    return np.meshgrid(np.arange(size), np.arange(size), indexing="ij")


def _norm2(dy, dx) -> np.ndarray:
    """``np.linalg.norm([dy, dx])`` as OpenBLAS's FMA ``ddot`` computes it: sqrt(fma(dx, dx, dy*dy))."""
    dy, dx = np.asarray(dy, np.float64), np.asarray(dx, np.float64)
    return np.sqrt(fma64(dx, dx, dy * dy))


def single_frequency_greyscale(image, freq, phase, intensity):
    """``clip(image + intensity * sin(x f0 + y f1 + phase))`` on every channel."""
    y, x = _grid(image.shape[0])
    noise = np.sin(x * freq[0] + y * freq[1] + phase)
    noise = np.stack((noise, noise, noise), axis=2)
    return np.clip(image + intensity * noise, 0, 255).astype(np.uint8)


def cocentric_sine_waves(image, offset, freq, amplitude, ring_width, intensity):
    """Rings about ``offset`` whose radius is perturbed by ``sin(angle * freq) * amplitude``,
    a saw of period ``ring_width`` centred on 0, times ``intensity`` per channel."""
    y, x = _grid(image.shape[0])
    dx, dy = x - offset[0], y - offset[1]
    angle = np.arctan2(dx, dy) * freq
    distance = ((np.sqrt(dx ** 2 + dy ** 2) + np.sin(angle) * amplitude) % ring_width) / ring_width
    distance -= 1 / 2
    noise = np.stack((intensity[0] * distance, intensity[1] * distance, intensity[2] * distance), axis=2)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def plasma_noise(image, time, iterations, sharpness, scale, intensity):
    """The original's iterated plasma field (a fixed number of warps of the scaled grid), RGB
    from three sines, blended in at ``intensity / 255``."""
    y, x = _grid(image.shape[0])
    x, y = x / scale, y / scale
    i0, i1, i2, i3 = 1.0, 1.0, 1.0, 0.0
    for _ in range(iterations):
        r0 = np.cos(y * i0 - i3 + time / i1) / i2
        r1 = np.sin(x * i0 - i3 + time / i1) / i2
        r0, r1 = r0 + -r1 * 0.3, r1 + r0 * 0.3
        x = x + r0
        y = y + r1
        i0, i1, i2, i3 = i0 * 1.93, i1 * 1.15, i2 * (2.25 - sharpness), i3 * (time * i1)
    noise = np.stack((np.sin(x - time), np.sin((x + y + np.sin(time)) * 0.5), np.sin(y + time)), axis=2)
    return np.clip((1 - intensity / 255) * image + intensity * noise, 0, 255).astype(np.uint8)


def _spectral_noise(size: int, power: np.ndarray, state: np.random.RandomState) -> np.ndarray:
    """Unit-variance real noise with amplitude spectrum ``power`` and the original's random
    phases (Hermitian-symmetric, drawn from ``state``)."""
    phases = state.uniform(low=0, high=2 * np.pi, size=(size, size // 2))
    if size % 2 == 0:
        phases = np.concatenate((phases, phases[::-1, ::-1]), axis=1)
    else:
        centre = state.uniform(low=0, high=2 * np.pi, size=(size // 2, 1))
        centre = np.concatenate((centre, np.array([[0.0]]), centre[::-1, :]), axis=0)
        phases = np.concatenate((phases, centre, phases[::-1, ::-1]), axis=1)
    spectrum = power * (np.cos(phases) + np.sin(phases) * 1j)
    spectrum = np.roll(spectrum, size // 2, axis=0)
    spectrum = np.roll(spectrum, size // 2, axis=1)
    noise = np.real(ifft2(spectrum))
    return noise / np.std(noise)


def _centre_distance(size: int) -> np.ndarray:
    y, x = _grid(size)
    centre = size / 2
    return _norm2(x - centre, y - centre)


def brownish_noise(image, seed, intensity):
    """Three channels of noise with power 1 / (f^2 + 1), added at ``intensity``."""
    size = image.shape[0]
    state = np.random.RandomState(seed=seed)
    power = 1 / (_centre_distance(size) ** 2 + 1)
    noise = np.stack([_spectral_noise(size, power, state) for _ in range(3)], axis=2)
    return np.clip(image + intensity * noise, 0, 255).astype(np.uint8)


def blue_noise_sample(image, seed, threshold):
    """Pixels where blue noise (power f) is at most ``threshold`` go black."""
    size = image.shape[0]
    state = np.random.RandomState(seed=seed)
    noise = _spectral_noise(size, _centre_distance(size), state)
    out = image * (noise > threshold).reshape(size, size, 1)
    return np.clip(out, 0, 255).astype(np.uint8)


def checkerboard_cutout(image, scales, angle, fraction, seed):
    """A rotated checkerboard of ``scales`` cells; each cell of one colour is grey (128) with
    probability ``fraction`` (a grid drawn from ``RandomState(seed)``)."""
    size = image.shape[0]
    state = np.random.RandomState(seed=seed)
    grid = state.uniform(size=(int(4 * size // scales[0]), int(4 * size // scales[1]))) < fraction
    y, x = _grid(size)
    nx = (np.cos(angle) * y + np.sin(angle) * x) / scales[0]
    ny = (-np.sin(angle) * y + np.cos(angle) * x) / scales[1]
    ix, iy = np.trunc(nx).astype(np.int64), np.trunc(ny).astype(np.int64)  # int(): towards zero
    keep = (np.trunc(nx % 2) != np.trunc(ny % 2)) | ~grid[ix, iy]  # negative indices wrap, as Python's
    return np.where(keep[..., None], image, np.uint8(128)).astype(np.uint8)


class _Perlin:
    """Ken Perlin's reference gradient noise as the original's ``PerlinNoiseGenerator``:
    gradients and permutation drawn from ``RandomState(seed)`` in its order."""

    B, N = 256, 16 * 256

    def __init__(self, state: np.random.RandomState):
        B = self.B
        self.p = np.arange(2 * B + 2)
        raw = np.array([(state.randint(low=0, high=2 ** 31, size=2) % (2 * B) - B) / B for _ in range(2 * B + 2)])
        self.g = raw / _norm2(raw[:, 0], raw[:, 1])[:, None]  # each normalised as the original's np.linalg.norm
        for i in np.arange(B - 1, -1, -1):
            k = self.p[i]
            j = state.randint(low=0, high=2 ** 31) % B
            self.p[i] = self.p[j]
            self.p[j] = k
        for i in range(B + 2):
            self.p[B + i] = self.p[i]
            self.g[B + i, :] = self.g[i, :]

    def turbulence(self, x, y, octaves) -> np.ndarray:
        """``sum |noise(f x, f y)| / f`` for f = 1, 2, 4, ... up to ``octaves``, per pixel
        (``_perlin_turbulence``: the original's scalar arithmetic, compiled)."""
        out = np.empty(np.shape(x), np.float64)
        _perlin_turbulence(np.ascontiguousarray(x, np.float64).ravel(), np.ascontiguousarray(y, np.float64).ravel(),
                           float(octaves), self.p, self.g, self.B, self.N, out.ravel())
        return out

    def noise(self, x, y) -> np.ndarray:
        return self.turbulence(x, y, 0.0)


@njit(cache=True, nogil=True)
def _perlin_noise_at(x, y, p, g, B, N):
    """The original's ``PerlinNoiseGenerator.noise(x, y)``, operation for operation (numba
    never fuses a multiply with an add, so these are numpy's float64 roundings)."""
    t = x + N
    bx0 = int(t) % B
    bx1 = (bx0 + 1) % B
    rx0 = t % 1.0
    rx1 = rx0 - 1.0
    t = y + N
    by0 = int(t) % B
    by1 = (by0 + 1) % B
    ry0 = t % 1.0
    ry1 = ry0 - 1.0
    i = p[bx0]
    j = p[bx1]
    b00 = p[i + by0]
    b10 = p[j + by0]
    b01 = p[i + by1]
    b11 = p[j + by1]
    sx = rx0 ** 2 * (3.0 - 2.0 * rx0)
    sy = ry0 ** 2 * (3.0 - 2.0 * ry0)
    u = rx0 * g[b00, 0] + ry0 * g[b00, 1]
    v = rx1 * g[b10, 0] + ry0 * g[b10, 1]
    a = u + sx * (v - u)
    u = rx0 * g[b01, 0] + ry1 * g[b01, 1]
    v = rx1 * g[b11, 0] + ry1 * g[b11, 1]
    b = u + sx * (v - u)
    return 1.5 * (a + sy * (b - a))


@njit(cache=True, nogil=True)
def _perlin_turbulence(xs, ys, octaves, p, g, B, N, out):
    """Per point: the original's ``turbulence`` (octaves > 0), or ``noise`` itself (0)."""
    for k in range(xs.shape[0]):
        x, y = xs[k], ys[k]
        if octaves == 0.0:
            out[k] = _perlin_noise_at(x, y, p, g, B, N)
            continue
        t = 0.0
        f = 1.0
        while f <= octaves:
            t += abs(_perlin_noise_at(f * x, f * y, p, g, B, N)) / f
            f = f * 2
        out[k] = t


def perlin_noise(image, m, turbulence, seed, gain, bias, alpha):
    """Perlin turbulence (``turbulence`` octaves) of the grid mapped by ``m``, blended in at ``alpha``."""
    size = image.shape[0]
    generator = _Perlin(np.random.RandomState(seed=seed))
    y, x = _grid(size)
    m = np.asarray(m, np.float64)
    # [y, x] @ m, as the original's matmul of a point by a 2 x 2 matrix
    py = fma64(x, m[1, 0], y * m[0, 0])
    px = fma64(x, m[1, 1], y * m[0, 1])
    f = generator.turbulence(py, px, turbulence) if turbulence != 1.0 else generator.noise(py, px)
    f = np.clip(gain * f + bias, 0, 1.0)
    noise = np.stack((f, f, f), axis=2)
    out = (1 - alpha) * image.astype(np.float32) + 255 * alpha * noise
    return np.clip(out, 0, 255).astype(np.uint8)


def _star(y, x, centre, radius, ray_lengths, amount):
    """The original's ray pattern about ``centre``: the blend factor of every pixel."""
    rays = len(ray_lengths)
    dy, dx = y - centre[0], x - centre[1]
    dist = _norm2(dy, dx)
    angle = np.arctan2(dx, dy)
    d = (angle + np.pi) / (2 * np.pi) * rays
    i = np.trunc(d).astype(np.int64)
    f = d - i
    if radius != 0:
        lengths = np.asarray(ray_lengths, np.float64)
        start, end = lengths[i % rays], lengths[(i + 1) % rays]
        length = start + f * (end - start)
        g = length ** 2 / (dist ** 2 + 1e-4)
        g = g ** ((100 - amount) / 50.0)
        f = f - 0.5
        f = 1 - f ** 2
        f = f * g
    return np.clip(f, 0, 1)


def sparkles(image, centers, radii, nrays, amounts, color, randomness, seed):
    """Five white stars of ``nrays`` rays each, drawn one over the other."""
    size = image.shape[0]
    state = np.random.RandomState(seed=seed)
    y, x = _grid(size)
    color = np.asarray(color)
    out = image
    for centre, rays, amount, radius in zip(centers, nrays, amounts, radii):
        ray_lengths = [max(1, radius + randomness / 100.0 * radius * state.randn()) for _ in range(rays)]
        value = out.astype(np.float32)
        f = _star(y, x, centre, radius, ray_lengths, amount)[..., None]
        out = value + f * (color - value)
    return np.clip(out, 0, 255).astype(np.uint8)


def inverse_sparkles(image, center, radius, rays, amount, color, randomness, seed):
    """The image seen through one star on white: white outside the rays."""
    state = np.random.RandomState(seed=seed)
    ray_lengths = [radius + randomness / 100.0 * radius * state.randn() for _ in range(rays)]
    y, x = _grid(image.shape[0])
    value = image.astype(np.float32)
    f = _star(y, x, center, radius, ray_lengths, amount)[..., None]
    color = np.asarray(color)
    out = color + f * (value - color)
    return np.clip(out, 0, 255).astype(np.uint8)


def _bilinear(image, py, px) -> np.ndarray:
    """The original's ``bilinear_interpolation`` of ``image`` at every (py, px) (float64 grids):
    the four neighbours (black outside), weights in its order, float64 out."""
    out = np.empty(np.shape(py) + (image.shape[2],), np.float64)
    _bilinear_points(np.ascontiguousarray(image), np.ascontiguousarray(py, np.float64).ravel(),
                     np.ascontiguousarray(px, np.float64).ravel(), out.reshape(-1, image.shape[2]))
    return out


@njit(inline="always")
def _neighbour(image, row, col, c):
    if 0 <= row < image.shape[0] and 0 <= col < image.shape[1]:
        return np.float64(image[row, col, c])
    return 0.0


@njit(cache=True, nogil=True)
def _bilinear_points(image, py, px, out):
    for k in range(py.shape[0]):
        y, x = py[k], px[k]
        top, left = int(np.floor(y)), int(np.floor(x))
        bottom, right = top + 1, left + 1
        w_left = (1.0 - x) + left
        w_right = (1.0 - right) + x
        w_top = (1.0 - y) + top
        w_bottom = (1.0 - bottom) + y
        for c in range(out.shape[1]):
            upper = _neighbour(image, top, left, c) * w_left + _neighbour(image, top, right, c) * w_right
            lower = _neighbour(image, bottom, left, c) * w_left + _neighbour(image, bottom, right, c) * w_right
            out[k, c] = upper * w_top + lower * w_bottom


def ripple(image, wavelengths, phases, amplitudes):
    """Each pixel samples (bilinear) the point moved by ``amplitude * sin(2 pi p / wavelength + phase)``
    along each axis."""
    y, x = _grid(image.shape[0])
    py = y + amplitudes[0] * np.sin(2 * np.pi * y / wavelengths[0] + phases[0])
    px = x + amplitudes[1] * np.sin(2 * np.pi * x / wavelengths[1] + phases[1])
    return np.clip(_bilinear(image, py, px), 0, 255).astype(np.uint8)


def pinch_and_twirl(image, num_per_axis, angles, amount):
    """A ``num_per_axis`` square grid of cells, each pinched by ``amount`` and twirled by its
    ``angles`` entry within the disc inscribed in it, cell after cell (a cell samples what the
    cells before it made)."""
    size = image.shape[0]
    out = image.copy().astype(np.float32)
    grid_size = size // num_per_axis
    radius = grid_size / 2
    for i in range(num_per_axis):
        for j in range(num_per_axis):
            left, right = i * grid_size, (i + 1) * grid_size
            top, bottom = j * grid_size, (j + 1) * grid_size
            cy, cx = top + radius, left + radius
            y, x = np.meshgrid(np.arange(top, bottom), np.arange(left, right), indexing="ij")
            dy, dx = y - cy, x - cx
            dist = _norm2(dy, dx)
            moved = ~((dist > radius) | (np.round(dist, 3) == 0.0))
            d = dist / radius
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # at the centre, left as it is
                t = np.sin(np.pi * 0.5 * d) ** (-amount)
                dy, dx = dy * t, dx * t
                a = angles[i, j] * ((1 - d) ** 2)
                py = np.where(moved, cy + (dy * np.cos(a) - dx * np.sin(a)), y)
                px = np.where(moved, cx + (dy * np.sin(a) + dx * np.cos(a)), x)
            out[top:bottom, left:right, :] = _bilinear(out, py, px)
    return np.clip(out, 0, 255).astype(np.uint8)


def transverse_chromatic_abberation(image, scales):
    """Each channel zoomed by its scale (scipy's cubic spline zoom, no prefilter) about the centre."""
    from scipy.ndimage import zoom
    size = image.shape[0]
    out = image.copy()
    for c in range(3):
        zoomed = zoom(image[:, :, c], scales[c], prefilter=False)
        edge = (zoomed.shape[0] - size) // 2
        out[:, :, c] = zoomed[edge:edge + size, edge:edge + size]
    return out.astype(np.uint8)


def circular_motion_blur(image, amount):
    """The mean of 21 rotations (scipy's, cubic) from ``-amount`` to ``amount`` degrees,
    weighted ``exp(-2 t^2)`` for t from -1 to 1."""
    from scipy.ndimage import rotate

    from ..ops import correctly_rounded_exp
    num = 21
    image = image.astype(np.float32) / 255
    out = np.zeros_like(image)
    factors = []
    for i in range(num):
        angle = (2 * i / (num - 1) - 1) * amount
        factor = np.float64(correctly_rounded_exp(-2 * (2 * i / (num - 1) - 1) ** 2))
        out += factor * rotate(image, angle, reshape=False)
        factors.append(factor)
    out /= sum(factors)
    return np.clip(out * 255, 0, 255).astype(np.uint8)


def lines(image, length, density, angle, angle_variation, seed):
    """``int(density * size)`` anti-aliased grey (128) lines through random points, their angles
    spread by ``angle_variation`` about ``angle`` (skimage's ``line_aa``)."""
    from skimage.draw import line_aa
    size = image.shape[0]
    count = int(density * size)
    reach = length * size
    state = np.random.RandomState(seed=seed)
    out = image.copy()
    for _ in range(count):
        x = size * state.uniform()
        y = size * state.uniform()
        a = angle + 2 * np.pi * angle_variation * (state.uniform() - 0.5)
        s = np.sin(a) * reach
        c = np.cos(a) * reach
        rows, cols, values = line_aa(int(x - c), int(y - s), int(x + c), int(y + s))
        inside = (rows >= 0) & (cols >= 0) & (rows < size) & (cols < size)
        rows, cols, values = rows[inside].astype(np.int64), cols[inside].astype(np.int64), values[inside]
        out[rows, cols, :] = (1.0 - values.reshape(-1, 1)) * out[rows, cols, :].astype(np.float32) \
            + values.reshape(-1, 1) * 128
    return out.astype(np.uint8)


LUMA = (0.2126, 0.7152, 0.0722)


def _luma(image) -> np.ndarray:
    """``np.dot(pixel, LUMA)`` of every pixel as OpenBLAS's FMA ``ddot`` sums three terms."""
    return fma64(image[..., 2], LUMA[2], fma64(image[..., 1], LUMA[1], image[..., 0] * LUMA[0]))


def caustic_refraction(image, time, size, eta, lens_scale, lighting_amount, softening):
    """The image seen through a caustic pattern (the original's five-step caustic field,
    blurred by ``softening``) taken as a lens: each pixel samples (bilinear) the point its
    refracted ray reaches, ``lens_scale`` away at most, and is lit by the pattern's slopes."""
    from scipy.ndimage import gaussian_filter
    n = image.shape[0]
    y, x = _grid(n)
    p0 = ((y / size) % 1) * 6.28318530718 - 250
    p1 = ((x / size) % 1) * 6.28318530718 - 250
    i0, i1 = p0.copy(), p1.copy()
    c = 1.0
    inten = 0.005
    for step in range(5):
        t = time * (1.0 - (3.5 / (step + 1)))
        i0, i1 = p0 + (np.cos(t - i0) + np.sin(t + i1)), p1 + (np.sin(t - i1) + np.cos(t + i0))
        length = np.sqrt((p0 / (np.sin(i0 + t) / inten)) ** 2 + (p1 / (np.cos(i1 + t) / inten)) ** 2)
        c = c + 1.0 / length
    c = c / 5.0
    c = 1.17 - c ** 1.4
    colour = np.clip(np.abs(c) ** 8.0, 0, 1)
    caustics = gaussian_filter(np.stack((colour, colour, colour), axis=2), sigma=softening)

    luma = np.pad(_luma(caustics), 1)  # black outside
    north, south = luma[1:-1, :-2], luma[1:-1, 2:]
    west, east = luma[:-2, 1:-1], luma[2:, 1:-1]
    v0, v1 = east - west, south - north
    norm = np.sqrt(fma64(1.0, 1.0, fma64(v1, v1, v0 * v0)))
    n0, n1, n2 = v0 / norm, v1 / norm, 1.0 / norm
    # refract (0, 0, 1) through the surface of normal n, as the original's refract(): unchanged
    # where the surface is flat; otherwise the refracted direction in the frame (n, n x s, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        flat = np.abs(n2) >= 1.0 - 1e-3
        out_angle = np.arcsin(np.sin(np.arccos(n2)) / eta)
        u0, u1 = np.cos(out_angle), np.sin(out_angle)
        spectator = np.sqrt(fma64(n0, n0, n1 * n1))
        s0, s1 = -n1 / spectator, n0 / spectator
        o0, o1 = -(n2 * s1), n2 * s0
        # the original inverts the (orthonormal) frame with LAPACK; its transpose differs in the
        # last bits only, which the original's rounding to 3 decimals below takes away
        r0 = np.where(flat, 0.0, n0 * u0 + o0 * u1)
        r1 = np.where(flat, 0.0, n1 * u0 + o1 * u1)
    r0, r1 = np.round(r0 * lens_scale, 3), np.round(r1 * lens_scale, 3)
    unit = image.astype(np.float32) / 255
    out = _bilinear(unit, y + r0, x + r1)
    out += ((north - south) * lighting_amount)[..., None]
    out += ((east - west) * lighting_amount)[..., None]
    out = np.clip(out, 0, 1)
    return np.clip((out * 255).astype(np.uint8), 0, 255)
