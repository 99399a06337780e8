"""``reference_impl.errors``: one family, built-in bases, path and cause kept, picklable."""

from __future__ import annotations

import errno
import pickle

import pytest

from reference_impl import errors

BASES = {
    errors.SavedModelNotFoundError: FileNotFoundError,
    errors.NotASavedModelError: ValueError,
    errors.CorruptSavedModelError: ValueError,
    errors.MetadataError: ValueError,
    errors.UnknownClassError: ValueError,
    errors.UnsafeDeserializationError: ValueError,
    errors.ModelInputsUnknownError: ValueError,
}


@pytest.mark.parametrize("cls", list(BASES))
def test_family_and_builtin_base(cls):
    error = cls("/models/m", "what went wrong")
    assert isinstance(error, errors.ReferenceImplError)
    assert isinstance(error, BASES[cls])
    assert error.path == "/models/m" and error.cause == "what went wrong"
    assert "/models/m" in str(error) and "what went wrong" in str(error)


@pytest.mark.parametrize("cls", list(BASES))
def test_pickle_round_trip(cls):
    error = cls("/models/m", ValueError("inner"))
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert back.path == "/models/m"
    assert isinstance(back.cause, ValueError) and str(back.cause) == "inner"
    assert str(back) == str(error)


def test_unpicklable_cause_travels_as_text():
    class Local(Exception):  # a local class cannot be pickled
        pass

    error = errors.CorruptSavedModelError("/m", Local("detail"))
    back = pickle.loads(pickle.dumps(error))
    assert back.cause == "Local: detail"
    assert "Local: detail" in str(back)


def test_not_found_looks_like_enoent():
    error = errors.SavedModelNotFoundError("/nowhere", "no such file or directory")
    assert error.errno == errno.ENOENT and error.filename == "/nowhere"
    assert str(error).startswith("No SavedModel found at '/nowhere'")


def test_path_like_is_accepted(tmp_path):
    error = errors.MetadataError(tmp_path / "keras_metadata.pb", "bad")
    assert error.path == str(tmp_path / "keras_metadata.pb")
