"""Keep TensorFlow's start-up noise out of test output.

TensorFlow prints C++ log lines (CUDA probing, oneDNN notices) to file descriptor 2 while it
is imported, before ``TF_CPP_MIN_LOG_LEVEL`` is read by absl. They bury pytest's own output,
so the first import runs with fd 2 pointed at /dev/null. Python exceptions still propagate.
"""

import contextlib
import logging
import os
import sys

_QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # oneDNN's fused CPU kernels print a notice and reorder float sums run to run.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "KERAS_BACKEND": "tensorflow",
    "CUDA_VISIBLE_DEVICES": "-1",
}


def quiet_environment():
    """Set the environment variables that silence TensorFlow (user settings win)."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_imports():
    """Import inside the block without TensorFlow's start-up lines: an adapter module that
    imports TensorFlow itself, say. Python exceptions still propagate."""
    quiet_environment()
    first = "tensorflow" not in sys.modules
    with _stderr_to_devnull() if first else contextlib.nullcontext():
        yield
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)


def quiet_tensorflow():
    """Import TensorFlow, Keras and tf_keras once, without their start-up log lines."""
    with quiet_imports():
        import tensorflow as tf
    return tf
