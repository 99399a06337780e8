"""``overwrite=`` semantics: ``atomic.should_write`` and, when present, ``reference_impl.save``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import reference_impl
from reference_impl import atomic
from tests.reference_impl import _infra_models as infra


class _Terminal(io.StringIO):
    """A stdin that claims to be an interactive terminal."""

    def isatty(self) -> bool:
        return True


def _tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def existing(tmp_path) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"previous model")
    (target / "variables").mkdir()
    (target / "variables" / "variables.index").write_bytes(b"\x00\x01previous")
    return target


@pytest.fixture
def answer(monkeypatch):
    """Make stdin a terminal and answer the overwrite question with the given text."""
    asked: list[str] = []

    def set_answer(text: str | None) -> list[str]:
        monkeypatch.setattr(sys, "stdin", _Terminal())

        def fake_input(prompt: str = "") -> str:
            asked.append(prompt)
            if text is None:
                raise EOFError
            return text

        monkeypatch.setattr("builtins.input", fake_input)
        return asked

    return set_answer


# -- atomic.should_write ---------------------------------------------------------------------


def test_absent_path_may_be_written(tmp_path):
    assert atomic.should_write(tmp_path / "new", overwrite=False) is True
    assert atomic.should_write(tmp_path / "new", overwrite=True) is True


def test_overwrite_true_allows_writing(existing):
    assert atomic.should_write(existing, overwrite=True) is True


def test_no_overwrite_without_terminal_raises_and_keeps_files(existing, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal: never read
    before = _tree(existing)
    with pytest.raises(FileExistsError) as error:
        atomic.should_write(existing, overwrite=False)
    assert str(existing) in str(error.value)
    assert error.value.filename == str(existing)
    assert _tree(existing) == before


def test_no_overwrite_with_closed_stdin_raises(existing, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(FileExistsError):
        atomic.should_write(existing, overwrite=False)


@pytest.mark.parametrize("text", ["n", "N", "no", "", "maybe"])
def test_terminal_answer_other_than_yes_declines(existing, answer, text):
    asked = answer(text)
    before = _tree(existing)
    assert atomic.should_write(existing, overwrite=False) is False
    assert len(asked) == 1 and str(existing) in asked[0] and "[y/N]" in asked[0]
    assert _tree(existing) == before


def test_terminal_end_of_input_declines(existing, answer):
    answer(None)
    assert atomic.should_write(existing, overwrite=False) is False


@pytest.mark.parametrize("text", ["y", "Y", "yes", " yes \n"])
def test_terminal_yes_accepts(existing, answer, text):
    answer(text)
    assert atomic.should_write(existing, overwrite=False) is True


# -- reference_impl.save ---------------------------------------------------------------------



@pytest.fixture(scope="module")
def saved_once(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("overwrite") / "model"
    reference_impl.save(infra.functional_model(), path)
    return path


def test_save_without_overwrite_raises_and_keeps_files(saved_once, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    before = _tree(saved_once)
    with pytest.raises(FileExistsError):
        reference_impl.save(infra.sequential_model(), saved_once, overwrite=False)
    assert _tree(saved_once) == before


def test_save_declined_on_terminal_keeps_files(saved_once, answer):
    answer("n")
    before = _tree(saved_once)
    reference_impl.save(infra.sequential_model(), saved_once, overwrite=False)
    assert _tree(saved_once) == before


def test_save_accepted_on_terminal_replaces(tmp_path, answer):
    target = tmp_path / "model"
    reference_impl.save(infra.functional_model(), target)
    before = _tree(target)
    answer("y")
    reference_impl.save(infra.sequential_model(), target, overwrite=False)
    assert _tree(target) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_save_overwrite_true_replaces_whole_directory(tmp_path):
    target = tmp_path / "model"
    reference_impl.save(infra.functional_model(), target)
    (target / "stray_file").write_text("from before")
    reference_impl.save(infra.sequential_model(), target, overwrite=True)
    assert not (target / "stray_file").exists(), "the old directory must be replaced whole"
    assert (target / "saved_model.pb").is_file()
