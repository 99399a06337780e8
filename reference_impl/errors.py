"""The exceptions `reference_impl` raises for bad input.

Every error is a :class:`ReferenceImplError` and also subclasses the built-in type a caller
would naturally catch (``FileNotFoundError`` for a missing path, ``ValueError`` for content
that is wrong), so ``except ValueError`` keeps working for code that does not know this
package.

Each error is built as ``Err(path, cause)``: ``path`` is the file or directory at fault (for
a refused save, the path that was not written) and ``cause`` says what is wrong with it,
either as text or as the exception that revealed the problem. Both are kept as attributes
and both appear in the message. The errors survive pickling, so a test can raise one in a
subprocess and inspect it in the parent.
"""

from __future__ import annotations

import errno
import os
import pickle

__all__ = [
    "ReferenceImplError",
    "SavedModelNotFoundError",
    "NotASavedModelError",
    "CorruptSavedModelError",
    "MetadataError",
    "UnknownClassError",
    "UnsafeDeserializationError",
    "ModelInputsUnknownError",
    "UnsupportedSavedModelError",
    "SaveFailedError",
]


def _describe_cause(cause: object) -> str:
    """Render ``cause`` for a message: the text itself, or ``Type: message`` for exceptions."""
    if isinstance(cause, BaseException):
        text = str(cause).strip()
        return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return str(cause)


def _picklable(cause: object) -> object:
    """Return ``cause`` if it pickles, else its description (TF errors may not pickle)."""
    try:
        pickle.dumps(cause)
    except Exception:  # any failure means "send the text instead"
        return _describe_cause(cause)
    return cause


class ReferenceImplError(Exception):
    """Base class of every error `reference_impl` raises about a file it was given.

    Attributes:
        path: the file or directory at fault, as a string.
        cause: what is wrong with it: a string or the underlying exception.
    """

    #: Short description of the error kind, the start of the message.
    summary = "SavedModel error"

    def __init__(self, path: str | os.PathLike[str], cause: object) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(self.path, cause)

    def __str__(self) -> str:
        return f"{self.summary} at '{self.path}': {_describe_cause(self.cause)}"

    def __reduce__(self):
        # Rebuild from (path, cause) rather than from ``args``: the built-in bases
        # (OSError in particular) reinterpret positional arguments.
        return (type(self), (self.path, _picklable(self.cause)))


class SavedModelNotFoundError(ReferenceImplError, FileNotFoundError):
    """Nothing exists at the path that was given."""

    summary = "No SavedModel found"

    def __init__(self, path: str | os.PathLike[str], cause: object) -> None:
        super().__init__(path, cause)
        # Fill in the OSError fields so code that inspects them sees a normal ENOENT.
        self.errno = errno.ENOENT
        self.strerror = _describe_cause(cause)
        self.filename = self.path

    def __str__(self) -> str:  # OSError defines its own __str__; keep ours.
        return ReferenceImplError.__str__(self)


class NotASavedModelError(ReferenceImplError, ValueError):
    """The path exists but holds no ``saved_model.pb`` (an empty directory, a random file)."""

    summary = "Not a SavedModel"


class CorruptSavedModelError(ReferenceImplError, ValueError):
    """A SavedModel file is truncated, altered, missing or inconsistent with the others."""

    summary = "Corrupt SavedModel"


class MetadataError(ReferenceImplError, ValueError):
    """``keras_metadata.pb`` cannot be parsed, or a node's metadata is not valid JSON."""

    summary = "Invalid Keras metadata"


class UnknownClassError(ReferenceImplError, ValueError):
    """The metadata names a class that is neither built in, registered nor a custom object."""

    summary = "Unknown class in Keras metadata"


class UnsafeDeserializationError(ReferenceImplError, ValueError):
    """Loading would execute saved code (Lambda bytecode, pickles) and safe_mode is on."""

    summary = "Unsafe deserialization refused"


class ModelInputsUnknownError(ReferenceImplError, ValueError):
    """``save`` was given a root model whose inputs are unknown (never built or called).

    As tf_keras' ``save`` does (``raise_model_input_error``), the save is refused before
    anything is written: such a model has no call functions or serving signature to save.
    Sub-layers that are not built are still saved, without functions, with a warning.
    """

    summary = "Cannot save the model"


class UnsupportedSavedModelError(ReferenceImplError, ValueError):
    """A valid SavedModel that this implementation cannot load: its config does not rebuild
    in Keras 3 and its saved functions do not revive it."""

    summary = "Unsupported SavedModel"


class SaveFailedError(ReferenceImplError, OSError):
    """Writing a SavedModel failed (a full disk, a read-only or forbidden directory, an I/O
    error). ``path`` is the target that was not replaced: it still holds what it held
    before (the previous model, or nothing); the temporary files are removed. ``errno`` is
    the underlying OS error's, when there is one."""

    summary = "Could not save the SavedModel"

    def __init__(self, path: str | os.PathLike[str], cause: object) -> None:
        super().__init__(path, cause)
        self.errno = getattr(cause, "errno", None)
        self.strerror = _describe_cause(cause)
        self.filename = self.path

    def __str__(self) -> str:
        return ReferenceImplError.__str__(self)
