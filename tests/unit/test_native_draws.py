"""The numba draw helpers give NumPy's own values and leave the generator where NumPy would:
every output seeded from them stays the same bytes."""
import numpy as np
import pytest

from corruptions import _native


@pytest.mark.parametrize("shape", [(224, 224, 3), (3, 64, 64, 3), (7, 5), (1,)])
def test_standard_normal_f32_is_numpys_draw(shape):
    ours, numpys = np.random.default_rng(12345), np.random.default_rng(12345)
    drawn = _native.standard_normal_f32(ours, shape)
    expected = numpys.standard_normal(shape, dtype=np.float32)
    assert drawn.dtype == np.float32 and drawn.shape == expected.shape
    assert np.array_equal(drawn, expected)
    assert ours.integers(0, 2**62) == numpys.integers(0, 2**62)  # the same state after


def test_standard_normal_f32_takes_other_generators_methods():
    class Replay:  # an original's recorded draws, as the fidelity tests replay them
        def standard_normal(self, shape, dtype):
            return np.full(shape, 0.5, dtype)
    assert np.array_equal(_native.standard_normal_f32(Replay(), (2, 3)), np.full((2, 3), 0.5, np.float32))
