"""A checksum manifest for the files of a saved model.

Protobuf files carry no checksum, and TensorFlow's ``fingerprint.pb`` checksum of
``saved_model.pb`` cannot be recomputed through public APIs. So a save made here records
the SHA-256 of every file it wrote in ``checksums.sha256`` at the top of the directory, in
the format of ``sha256sum`` (``<hex digest>  <relative path>``, one line per file, sorted),
so that ``sha256sum -c checksums.sha256`` run inside the directory checks it too.

Readers that do not know the file (tf_keras, ``tf.saved_model.load``) ignore it. Directories
written elsewhere have no manifest and are checked by the other means in
:mod:`reference_impl.validate`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from reference_impl.errors import CorruptSavedModelError

__all__ = ["MANIFEST_FILENAME", "write_manifest", "verify_manifest"]

MANIFEST_FILENAME = "checksums.sha256"

_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64})  (?P<path>.+)$")
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> list[str]:
    """Relative POSIX paths of the regular files under ``root``, manifest excluded, sorted."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            relative = Path(dirpath, filename).relative_to(root).as_posix()
            if relative != MANIFEST_FILENAME:
                found.append(relative)
    return sorted(found)


def write_manifest(dirpath: str | os.PathLike[str]) -> Path:
    """Write ``checksums.sha256`` for every file now under ``dirpath``; return its path."""
    root = Path(dirpath)
    lines = [f"{_sha256(root / relative)}  {relative}\n" for relative in _files(root)]
    manifest = root / MANIFEST_FILENAME
    manifest.write_text("".join(lines), encoding="ascii")
    return manifest


def verify_manifest(dirpath: str | os.PathLike[str]) -> frozenset[str]:
    """Check the files of ``dirpath`` against its manifest.

    Returns the relative paths (POSIX style) of the files verified: empty when there is no
    manifest. Files the manifest does not list are not checked.

    Raises:
        CorruptSavedModelError: the manifest is malformed, or a listed file is missing or
            differs (named in the error).
    """
    root = Path(dirpath)
    manifest = root / MANIFEST_FILENAME
    if not manifest.is_file():
        return frozenset()
    try:
        text = manifest.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise CorruptSavedModelError(manifest, f"checksum manifest is not text: {exc}") from exc
    verified = set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = _LINE.match(line)
        relative = match["path"] if match else ""
        if not match or relative.startswith("/") or ".." in Path(relative).parts:
            raise CorruptSavedModelError(manifest, f"malformed line {number}: {line!r}")
        path = root / relative
        if not path.is_file():
            raise CorruptSavedModelError(path, "listed in the checksum manifest but missing")
        if _sha256(path) != match["digest"]:
            raise CorruptSavedModelError(
                path, f"its SHA-256 differs from the one in {MANIFEST_FILENAME} (altered)"
            )
        verified.add(relative)
    return frozenset(verified)
