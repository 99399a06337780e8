"""Numeric tolerances of the suite, written once.

TensorFlow's ``assertAllCloseAccordingToType`` levels: a saved function runs the same kernels
as the eager model, so only reassociation noise is allowed. NaN equals NaN (``equal_nan``):
a model that produces NaN must reproduce it, not hide it.
"""

import numpy as np

TOLERANCES = {
    "float64": (1e-6, 1e-6),
    "float32": (1e-6, 1e-6),
    "float16": (1e-3, 1e-3),
    "bfloat16": (1e-2, 1e-2),
}
_EXACT = (0.0, 0.0)


def tolerance(dtype):
    """``(rtol, atol)`` for values of ``dtype`` (integers and booleans compare exactly)."""
    return TOLERANCES.get(np.dtype(dtype).name if dtype != "bfloat16" else dtype, _EXACT)


def _as_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def assert_close(actual, expected, what, *, dtype=None):
    """Assert two arrays are equal within the tolerance of the coarser of their dtypes."""
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    )
    names = [str(actual.dtype), str(expected.dtype)] + ([dtype] if dtype else [])
    rtol, atol = max((tolerance(name) for name in names), key=lambda t: t[0])
    a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
    if not np.allclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(a64 - e64)
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
        raise AssertionError(
            f"{what}: values differ beyond rtol={rtol}, atol={atol} "
            f"(max |diff| {np.nanmax(diff):.3g} at {worst}: {a64[worst]!r} vs {e64[worst]!r})"
        )


def assert_bitwise(actual, expected, what):
    """Assert two arrays have the same dtype, shape and bytes."""
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.tobytes() == expected.tobytes(), f"{what}: values are not bitwise equal"
