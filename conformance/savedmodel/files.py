"""What a SavedModel directory holds on disk: its files, their digest, its checkpoint keys."""

import hashlib
import os


def relative_files(path):
    """Every file under ``path``, as paths relative to it."""
    return [
        os.path.relpath(os.path.join(d, f), path) for d, _, files in os.walk(path) for f in files
    ]


def tree_digest(path):
    """A digest of every file's relative path and bytes under ``path``."""
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def checkpoint_prefix(path):
    return os.path.join(path, "variables", "variables")


def checkpoint_value_keys(path):
    """The checkpoint keys of the variable values the SavedModel at ``path`` holds."""
    import tensorflow as tf

    return sorted(
        key
        for key, _ in tf.train.list_variables(checkpoint_prefix(path))
        if key.endswith("VARIABLE_VALUE")
    )


def optimizer_value_keys(path):
    """The checkpoint keys of the optimizer's variable values (``optimizer/...``)."""
    return [key for key in checkpoint_value_keys(path) if key.startswith("optimizer/")]
