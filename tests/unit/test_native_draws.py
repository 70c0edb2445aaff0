"""The numba draw helpers give NumPy's own values and leave the generator where NumPy would:
every output seeded from them stays the same bytes."""
import numpy as np
import pytest

from corruptions import native as _native


@pytest.mark.parametrize("shape", [(224, 224, 3), (3, 64, 64, 3), (7, 5), (1,)])
def test_standard_normal_f32_is_numpys_draw(shape):
    ours, numpys = np.random.default_rng(12345), np.random.default_rng(12345)
    drawn = _native.standard_normal_f32(ours, shape)
    expected = numpys.standard_normal(shape, dtype=np.float32)
    assert drawn.dtype == np.float32 and drawn.shape == expected.shape
    assert np.array_equal(drawn, expected)
    assert ours.integers(0, 2**62) == numpys.integers(0, 2**62)  # the same state after


def test_standard_normal_f32_many_draws_odd_spare_and_other_bit_generators():
    """Millions of draws (the ziggurat's rare wedge and tail paths thousands of times), a
    generator holding a spare 32-bit half from an earlier draw, and a Philox generator."""
    ours, numpys = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(_native.standard_normal_f32(ours, (3_000_001,)),
                          numpys.standard_normal(3_000_001, dtype=np.float32))
    assert ours.bit_generator.state == numpys.bit_generator.state
    for rng in (ours, numpys):
        rng.integers(0, 10, dtype=np.uint32)  # leaves has_uint32 set
    assert np.array_equal(_native.standard_normal_f32(ours, (999,)), numpys.standard_normal(999, dtype=np.float32))
    assert ours.bit_generator.state == numpys.bit_generator.state
    ours, numpys = np.random.Generator(np.random.Philox(3)), np.random.Generator(np.random.Philox(3))
    assert np.array_equal(_native.standard_normal_f32(ours, (50, 3)), numpys.standard_normal((50, 3), dtype=np.float32))
    assert ours.random() == numpys.random()


def test_standard_normal_f32_takes_other_generators_methods():
    class Replay:  # an original's recorded draws, as the fidelity tests replay them
        def standard_normal(self, shape, dtype):
            return np.full(shape, 0.5, dtype)
    assert np.array_equal(_native.standard_normal_f32(Replay(), (2, 3)), np.full((2, 3), 0.5, np.float32))
