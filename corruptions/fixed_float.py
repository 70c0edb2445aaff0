"""OpenCV's float blur and bilinear warps, restated so that every rounding is fixed.

The originals call ``cv2.GaussianBlur`` on a float32 disk (defocus_blur), ``cv2.warpAffine`` on a
float32 image (elastic_transform) and ``cv2.warpPerspective`` (ImageNet-P's tilt). OpenCV picks
their code by the CPU: its AVX2 code fuses multiplies and adds (``v_fma``), its SSE code does not,
so the same call gives other bits on an older CPU. The golden outputs are the AVX2 results, so
this module computes exactly what OpenCV 5.0's AVX2 code computes, operation for operation: each
fused multiply-add is LLVM's ``fma`` intrinsic (one rounding, also where the CPU has no FMA unit:
then it is libm's correctly rounded ``fmaf``), every other step a plain float32 operation, which
numba never contracts. The result is the same on any x86-64 CPU (``tests/unit/test_cpu_independence.py``)
and equal to OpenCV on an AVX2 CPU (``tests/fidelity/test_fixed_float.py``). Where this process's
OpenCV runs its AVX2 code, the warps call OpenCV itself (the same bytes, three times faster); the
blur, computed once per disk, is always the restatement.

What OpenCV's AVX2 code does, as measured against it (the formulas below are the ones that agree
on every value of millions of random inputs and of every configured disk):

- ``GaussianBlur`` (float32, 3 x 3 or 5 x 5, reflect-101): a row pass then a column pass with the
  float32 weights ``cv2.getGaussianKernel`` gives. Row pass, vector part and pairs:
  ``fma(s2, k2, fma(c, k0, s1 * k1))``; its last odd column ``c*k0 + s1*k1 (+ s2*k2)``, fused
  once for 3 taps (``fma(s1, k1, c*k0)``) and not at all for 5. Column pass: ``fma(s2, k2,
  fma(s1, k1, c*k0))`` over the 8-lane vector part, the same for 3 taps elsewhere, unfused for 5.
  Here ``c`` is the centre tap and ``s1``, ``s2`` the sums of the taps one and two away.
- ``warpAffine`` / ``warpPerspective`` (bilinear, ``M`` inverted as OpenCV inverts it, then cast to
  float32): per row ``rx = y*M1 + M2`` (float32, unfused); in blocks of 16 columns
  ``sx = fma(M0, x, rx)`` (perspective: divided by ``fma(M6, x, ry_w)``); the columns after the
  last whole block ``sx = fma(x, M0, y*M1) + M2``. Then ``ix = floor(sx)``, ``a = sx - ix`` and
  ``p = fma(a, p01 - p00, p00)``, ``q = fma(a, p11 - p10, p10)``, ``fma(b, q - p, p)``; uint8
  results rounded half to even and saturated.
"""
from __future__ import annotations

import cv2
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# OpenCV's AVX2 warps work in blocks of 2 x 8 float32 lanes; columns after the last whole block
# take its scalar formula
WARP_BLOCK = 16
# OpenCV's AVX2 filters work in 8 float32 lanes
FILTER_LANES = 8
# whether this process's OpenCV runs its AVX2 + FMA code (CV_CPU_AVX2, CV_CPU_FMA3; OPENCV_CPU_DISABLE
# lowers it): then its warps give the restated bytes themselves, faster
OPENCV_RUNS_AVX2 = bool(cv2.checkHardwareSupport(11) and cv2.checkHardwareSupport(12))


def _fma_intrinsic(numba_type, llvm_type, name: str):
    """An intrinsic computing ``a * b + c`` rounded once (LLVM's ``name``, e.g. ``llvm.fma.f32``)."""
    @intrinsic
    def fused(typingctx, a, b, c):
        def codegen(context, builder, sig, args):
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(llvm_type, [llvm_type] * 3),
                                                      name)
            return builder.call(function, args)
        return numba_type(numba_type, numba_type, numba_type), codegen
    return fused


_fma = _fma_intrinsic(types.float32, ir.FloatType(), "llvm.fma.f32")
_fma64 = _fma_intrinsic(types.float64, ir.DoubleType(), "llvm.fma.f64")


@njit(cache=True, nogil=True)
def _fma64_arrays(a, b, c, out):
    for i in range(out.size):
        out.flat[i] = _fma64(a.flat[i], b.flat[i], c.flat[i])


def fma64(a, b, c) -> np.ndarray:
    """Elementwise ``a * b + c`` in float64 with one rounding, broadcast like numpy (OpenBLAS's
    FMA kernels compute, for instance, ``np.linalg.norm`` of a 2-vector as
    ``sqrt(fma(y, y, x * x))``; this gives those bits on any CPU)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    out = np.empty(a.shape, np.float64)
    _fma64_arrays(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(c), out)
    return out


@njit(cache=True, nogil=True)
def fma32(a, b, c):
    """``a * b + c`` in float32 with one rounding (for tests and callers outside numba)."""
    return _fma(np.float32(a), np.float32(b), np.float32(c))


@njit(inline="always")
def _reflect101(i, n):
    """OpenCV's BORDER_REFLECT_101 index, for any distance outside ``[0, n)``."""
    if n == 1:
        return 0
    period = 2 * n - 2
    i = abs(i) % period
    return i if i < n else period - i


@njit(inline="always")
def _combine(c, s1, s2, k0, k1, k2, taps, form):
    """One tap sum of OpenCV's small symmetric filters. form 0: the row pass's vector code,
    1: the column pass's vector code, 2: unfused."""
    if taps == 3:
        if form == 0:
            return _fma(c, k0, np.float32(s1 * k1))
        if form == 1:
            return _fma(s1, k1, np.float32(c * k0))
        return np.float32(np.float32(c * k0) + np.float32(s1 * k1))
    if form == 0:
        return _fma(s2, k2, _fma(c, k0, np.float32(s1 * k1)))
    if form == 1:
        return _fma(s2, k2, _fma(s1, k1, np.float32(c * k0)))
    return np.float32(np.float32(np.float32(c * k0) + np.float32(s1 * k1)) + np.float32(s2 * k2))


@njit(cache=True, nogil=True)
def _gaussian_blur_small(image, weights):
    height, width = image.shape
    taps = weights.shape[0]
    half = taps // 2
    k0 = weights[half]
    k1 = weights[half + 1]
    k2 = weights[half + 2] if taps == 5 else np.float32(0)
    vector_end = (width // FILTER_LANES) * FILTER_LANES
    pairs_end = vector_end + ((width - vector_end) // 2) * 2
    # the row pass's last odd column: fused once for 3 taps, unfused for 5
    row_last_form = 1 if taps == 3 else 2
    column_tail_form = 1 if taps == 3 else 2
    rows = np.empty((height, width), np.float32)
    zero = np.float32(0)
    for y in range(height):
        for i in range(width):
            c = image[y, i]
            s1 = image[y, _reflect101(i - 1, width)] + image[y, _reflect101(i + 1, width)]
            s2 = image[y, _reflect101(i + 2, width)] + image[y, _reflect101(i - 2, width)] if taps == 5 else zero
            rows[y, i] = _combine(c, s1, s2, k0, k1, k2, taps, 0 if i < pairs_end else row_last_form)
    out = np.empty((height, width), np.float32)
    for y in range(height):
        above, below = _reflect101(y - 1, height), _reflect101(y + 1, height)
        above2, below2 = _reflect101(y - 2, height), _reflect101(y + 2, height)
        for i in range(width):
            s1 = rows[above, i] + rows[below, i]
            s2 = rows[below2, i] + rows[above2, i] if taps == 5 else zero
            out[y, i] = _combine(rows[y, i], s1, s2, k0, k1, k2, taps, 1 if i < vector_end else column_tail_form)
    return out


def gaussian_blur(image: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(image, (ksize, ksize), sigma)`` of a 2-D float32 array (reflect-101
    border) as OpenCV's AVX2 code computes it, on any CPU. ``ksize`` is 3 or 5."""
    if ksize not in (3, 5):
        raise ValueError(f"ksize must be 3 or 5, not {ksize}")
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError("a 2-D float32 array is blurred")
    weights = cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F).ravel()
    return _gaussian_blur_small(image, np.ascontiguousarray(weights))


@njit(inline="always")
def _source_point(m, fx, fy, yx, yy, yw, row_x, row_y, row_w, vector, perspective):
    """Where output pixel (fx, fy) samples the source: OpenCV's vector formula in whole 16-column
    blocks, its scalar one after them."""
    if vector:
        sx = _fma(m[0], fx, row_x)
        sy = _fma(m[3], fx, row_y)
        if perspective:
            sw = _fma(m[6], fx, row_w)
            sx = sx / sw
            sy = sy / sw
    else:
        sx = _fma(fx, m[0], yx) + m[2]
        sy = _fma(fx, m[3], yy) + m[5]
        if perspective:
            sw = _fma(fx, m[6], yw) + m[8]
            sx = sx / sw
            sy = sy / sw
    return sx, sy


@njit(inline="always")
def _row_points(m, top_row, left, tail_from, perspective, ixs, iys, alphas, betas):
    """Each output column's source point on row ``top_row``: integer corner and fractions."""
    fy = np.float32(top_row)
    yx, yy, yw = np.float32(fy * m[1]), np.float32(fy * m[4]), np.float32(fy * m[7])
    row_x, row_y = yx + m[2], yy + m[5]
    row_w = yw + m[8] if perspective else np.float32(1)
    far = np.float32(-1e9)
    for q in range(ixs.shape[0]):
        x = left + q
        sx, sy = _source_point(m, np.float32(x), fy, yx, yy, yw, row_x, row_y, row_w, x < tail_from, perspective)
        if not (abs(sx) < 1e9 and abs(sy) < 1e9):  # OpenCV's floor saturates: far outside
            sx = far
            sy = far
        fx0 = np.floor(sx)
        fy0 = np.floor(sy)
        ixs[q] = int(fx0)
        iys[q] = int(fy0)
        alphas[q] = sx - fx0
        betas[q] = sy - fy0


@njit(inline="always")
def _lerp2(p00, p01, p10, p11, alpha, beta):
    upper = _fma(alpha, p01 - p00, p00)
    lower = _fma(alpha, p11 - p10, p10)
    return _fma(beta, lower - upper, upper)


@njit(cache=True, nogil=True)
def _warp_float_reflect(src, m, full_width, out):
    """Float32 output of an affine or perspective warp by the inverse map ``m`` (float32, 9
    values; perspective when its last row is not 0 0 1), reflect-101 border."""
    height, width, channels = src.shape
    rows, cols = out.shape[0], out.shape[1]
    perspective = not (m[6] == 0 and m[7] == 0 and m[8] == 1)
    ixs, iys = np.empty(cols, np.int64), np.empty(cols, np.int64)
    alphas, betas = np.empty(cols, np.float32), np.empty(cols, np.float32)
    for r in range(rows):
        _row_points(m, r, 0, (full_width // WARP_BLOCK) * WARP_BLOCK, perspective, ixs, iys, alphas, betas)
        for q in range(cols):
            ix, iy = ixs[q], iys[q]
            if 0 <= ix < width - 1 and 0 <= iy < height - 1:
                y0, y1, x0, x1 = iy, iy + 1, ix, ix + 1
            else:
                y0, y1 = _reflect101(iy, height), _reflect101(iy + 1, height)
                x0, x1 = _reflect101(ix, width), _reflect101(ix + 1, width)
            for c in range(channels):
                out[r, q, c] = _lerp2(src[y0, x0, c], src[y0, x1, c], src[y1, x0, c], src[y1, x1, c],
                                      alphas[q], betas[q])


@njit(cache=True, nogil=True)
def _warp_uint8_black(src, m, full_width, top, left, out):
    """uint8 output rows ``top..`` and columns ``left..`` of a ``full_width`` wide warp by the
    inverse map ``m`` (float32, 9 values; perspective when its last row is not 0 0 1), black
    border, rounded half to even and saturated."""
    height, width, channels = src.shape
    rows, cols = out.shape[0], out.shape[1]
    perspective = not (m[6] == 0 and m[7] == 0 and m[8] == 1)
    ixs, iys = np.empty(cols, np.int64), np.empty(cols, np.int64)
    alphas, betas = np.empty(cols, np.float32), np.empty(cols, np.float32)
    zero, top_value = np.float32(0), np.float32(255)
    for r in range(rows):
        _row_points(m, top + r, left, (full_width // WARP_BLOCK) * WARP_BLOCK, perspective, ixs, iys, alphas, betas)
        for q in range(cols):
            ix, iy, alpha, beta = ixs[q], iys[q], alphas[q], betas[q]
            if 0 <= ix < width - 1 and 0 <= iy < height - 1:
                for c in range(channels):
                    value = np.rint(_lerp2(np.float32(src[iy, ix, c]), np.float32(src[iy, ix + 1, c]),
                                           np.float32(src[iy + 1, ix, c]), np.float32(src[iy + 1, ix + 1, c]),
                                           alpha, beta))
                    out[r, q, c] = np.uint8(min(value if value > zero else zero, top_value))
            else:
                in_x0, in_x1 = 0 <= ix < width, 0 <= ix + 1 < width
                in_y0, in_y1 = 0 <= iy < height, 0 <= iy + 1 < height
                for c in range(channels):
                    p00 = np.float32(src[iy, ix, c]) if in_y0 and in_x0 else zero
                    p01 = np.float32(src[iy, ix + 1, c]) if in_y0 and in_x1 else zero
                    p10 = np.float32(src[iy + 1, ix, c]) if in_y1 and in_x0 else zero
                    p11 = np.float32(src[iy + 1, ix + 1, c]) if in_y1 and in_x1 else zero
                    value = np.rint(_lerp2(p00, p01, p10, p11, alpha, beta))
                    out[r, q, c] = np.uint8(min(value if value > zero else zero, top_value))


def _affine_inverse(matrix: np.ndarray) -> np.ndarray:
    """The 3 x 3 inverse map ``cv2.warpAffine`` samples by (its inversion is OpenCV's scalar
    float64 code, the same on any CPU)."""
    return np.vstack([cv2.invertAffineTransform(np.asarray(matrix, np.float64)), [0.0, 0.0, 1.0]]).ravel()


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int], restated: bool = False) -> np.ndarray:
    """``cv2.warpAffine(image, matrix, size, borderMode=BORDER_REFLECT_101)`` (bilinear) of a
    float32 H x W (x C) image, as OpenCV's AVX2 code computes it, on any CPU: OpenCV itself where
    it runs that code, the restatement elsewhere or when ``restated``."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if OPENCV_RUNS_AVX2 and not restated:
        return cv2.warpAffine(image, np.asarray(matrix, np.float64), size, borderMode=cv2.BORDER_REFLECT_101)
    flat = image.ndim == 2
    if flat:
        image = image[..., None]
    width, height = size
    out = np.empty((height, width, image.shape[2]), np.float32)
    _warp_float_reflect(image, _affine_inverse(matrix).astype(np.float32), width, out)
    return out[..., 0] if flat else out


def warp_perspective(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int],
                     window: tuple[int, int, int, int] | None = None, restated: bool = False) -> np.ndarray:
    """``cv2.warpPerspective(image, matrix, size)`` (bilinear, black border) of a uint8 H x W x 3
    image, as OpenCV's AVX2 code computes it, on any CPU: OpenCV itself where it runs that code,
    the restatement elsewhere or when ``restated``. ``window`` (top, left, rows, cols) is the part
    of the ``size`` output returned, the same bytes as cutting it out (the restatement computes
    only that part)."""
    width, height = size
    top, left, rows, cols = window if window is not None else (0, 0, height, width)
    if OPENCV_RUNS_AVX2 and not restated:
        # OpenCV's four-channel path is its fastest; it interpolates each channel alone
        warped = cv2.warpPerspective(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2RGBA),
                                     np.asarray(matrix, np.float64), size)
        return cv2.cvtColor(warped[top:top + rows, left:left + cols], cv2.COLOR_RGBA2RGB)
    ok, inverse = cv2.invert(np.asarray(matrix, np.float64), flags=cv2.DECOMP_LU)  # warpPerspective's own
    image = np.ascontiguousarray(image, dtype=np.uint8)
    out = np.empty((rows, cols, image.shape[2]), np.uint8)
    _warp_uint8_black(image, (inverse if ok else np.zeros((3, 3))).astype(np.float32).ravel(), width, top, left, out)
    return out
