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


def _assert_allclose(actual, expected, rtol, atol, what):
    """``np.allclose`` in float64 (NaN equals NaN); the error names the worst element."""
    a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
    if not np.allclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(a64 - e64)
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
        raise AssertionError(
            f"{what}: values differ beyond rtol={rtol}, atol={atol} "
            f"(max |diff| {np.nanmax(diff):.3g} at {worst}: {a64[worst]!r} vs {e64[worst]!r})"
        )


def assert_close(actual, expected, what, *, dtype=None):
    """Assert two arrays are equal within the tolerance of the coarser of their dtypes."""
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    )
    names = [str(actual.dtype), str(expected.dtype)] + ([dtype] if dtype else [])
    rtol, atol = max((tolerance(name) for name in names), key=lambda t: t[0])
    _assert_allclose(actual, expected, rtol, atol, what)


def assert_bitwise(actual, expected, what):
    """Assert two arrays have the same dtype, shape and bytes."""
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.tobytes() == expected.tobytes(), f"{what}: values are not bitwise equal"


# Converted models (CONSUMER-TFLITE, CONSUMER-ONNX) run other kernels than TensorFlow's:
# TFLite's XNNPACK and onnxruntime's MLAS sum in another order, fuse multiply-adds and
# approximate transcendental functions their own way, so a few ulps per layer are allowed
# (float32: 1e-5 is ~80 ulps, float16: 1e-2 ~10 ulps, over up to ~10 drawn layers). Measured
# on the ci stream with the reference (2026-11-25): largest relative differences float32
# 1.7e-7, float16 8.0e-4, float64 3.6e-14. A larger difference that a plain
# tf.saved_model.save of the same model shows too is the converter's, not the saver's
# (``consumers.py``); NaN equals NaN as above.
CONSUMER_TOLERANCES = {
    "float64": (1e-6, 1e-6),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}


def consumer_tolerance(dtype):
    """``(rtol, atol)`` for a converted model's output of ``dtype`` (integers exactly)."""
    name = dtype if dtype == "bfloat16" else np.dtype(dtype).name
    return CONSUMER_TOLERANCES.get(name, _EXACT)


def assert_converted_close(actual, expected, what):
    """Assert a converted model's output equals TensorFlow's within ``CONSUMER_TOLERANCES``."""
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    )
    rtol, atol = max(
        (consumer_tolerance(str(a.dtype)) for a in (actual, expected)), key=lambda t: t[0]
    )
    _assert_allclose(actual, expected, rtol, atol, what)
