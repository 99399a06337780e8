"""Read the legacy corpus: Keras SavedModels written by TensorFlow 2.12-2.21 themselves.

Layout (made by ``python -m conformance legacy-corpus``, ``conformance/tools/legacy_corpus.py``)::

    legacy/index.json                          writers, their cases, a sha256 per case
    legacy/<writer>/<case>/saved_model/        exactly as the writer saved it
    legacy/<writer>/<case>/record.json         what the writer saw (format below)
    legacy/<writer>/<case>/record.npz          its arrays

``writer`` is ``tf-2.12`` ... ``tf-2.21``; ``case`` is ``spec-00`` ... ``spec-23`` (the corpus
specs) or a short real-world name. ``record.json`` (``"format": 1``) holds ``writer``
(package ``tf.keras`` or ``tf_keras`` and the tensorflow, keras, python, numpy versions),
``case``, ``kind`` (``spec``/``real``), ``spec`` (the spec dict or null), ``description``,
``deterministic_in_training``, ``inputs`` (names in call order), ``input_structure`` and
``output_structure`` (``single``/``list``/``dict``, with ``output_keys`` for a dict),
``outputs`` and ``losses`` (counts), ``variables`` (names in ``model.variables`` order),
``custom_classes`` (``name``, ``registered``), ``compiled`` and, for a compiled model,
``optimizer`` (class, iterations, variable names). ``record.npz`` holds ``input/<i>``,
``output_inference/<i>``, ``output_training/<i>`` (deterministic models only), ``loss/<i>``,
``variable/<i>`` and ``optimizer_variable/<i>``.

This module imports only numpy and the standard library: no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LEGACY_DIR = Path(__file__).parent / "legacy"
INDEX_FILE = LEGACY_DIR / "index.json"
FORMAT = 1


@dataclass(frozen=True)
class LegacyCase:
    """One file of the corpus and what its writer recorded."""

    writer: str
    case: str
    path: Path  # the SavedModel directory
    record: dict[str, Any]
    inputs: list[np.ndarray]
    outputs_inference: list[np.ndarray]
    outputs_training: list[np.ndarray] | None
    losses: list[np.ndarray]
    variables: list[np.ndarray]  # in the record's "variables" order (names may repeat)
    optimizer_variables: list[np.ndarray] = field(default_factory=list)

    @property
    def variable_names(self) -> list[str]:
        return list(self.record["variables"])

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @property
    def deterministic_in_training(self) -> bool:
        return self.record["deterministic_in_training"]

    @property
    def custom_classes(self) -> list[dict[str, Any]]:
        return self.record["custom_classes"]

    @property
    def writer_versions(self) -> dict[str, str]:
        return self.record["writer"]

    def call_inputs(self) -> Any:
        """The inputs as the model is called with them: one array, a list, or a dict."""
        structure = self.record["input_structure"]
        if structure == "dict":
            return dict(zip(self.record["inputs"], self.inputs, strict=True))
        if structure == "list":
            return list(self.inputs)
        return self.inputs[0]

    def structured(self, outputs: list[np.ndarray]) -> Any:
        """Flat recorded outputs in the structure the model returns them."""
        structure = self.record["output_structure"]
        if structure == "dict":
            return dict(zip(self.record["output_keys"], outputs, strict=True))
        if structure == "list":
            return list(outputs)
        return outputs[0]


def index(root: Path | str = LEGACY_DIR) -> dict[str, Any]:
    path = Path(root) / "index.json"
    return json.loads(path.read_text()) if path.exists() else {"format": FORMAT, "writers": {}}


def writers(root: Path | str = LEGACY_DIR) -> list[str]:
    """Writer names in version order (tf-2.12 before tf-2.9 would not be: numeric)."""
    return sorted(index(root)["writers"], key=_writer_key)


def _writer_key(name: str):
    tail = name.split("-", 1)[-1]
    parts = tail.split(".")
    return tuple(int(p) if p.isdigit() else 10**6 for p in parts), name


def cases(root: Path | str = LEGACY_DIR) -> list[tuple[str, str]]:
    """(writer, case) of every file the index lists, writers in version order."""
    doc = index(root)
    return [
        (w, c)
        for w in sorted(doc["writers"], key=_writer_key)
        for c in sorted(doc["writers"][w]["cases"])
    ]


def skipped(root: Path | str = LEGACY_DIR) -> dict[str, dict[str, str]]:
    """writer -> case -> the error that kept the writer from writing it."""
    return {w: dict(e.get("skipped", {})) for w, e in index(root)["writers"].items()}


def _arrays(npz, prefix: str) -> list[np.ndarray]:
    n = sum(1 for k in npz.files if k.startswith(prefix + "/"))
    return [npz[f"{prefix}/{i}"] for i in range(n)]


def load_case(writer: str, case: str, root: Path | str = LEGACY_DIR) -> LegacyCase:
    case_dir = Path(root) / writer / case
    record = json.loads((case_dir / "record.json").read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{case_dir}: record format {record.get('format')!r}, not {FORMAT}")
    with np.load(case_dir / "record.npz", allow_pickle=False) as npz:
        variables = _arrays(npz, "variable")
        opt = _arrays(npz, "optimizer_variable")
        training = _arrays(npz, "output_training") if record["deterministic_in_training"] \
            else None
        loaded = dict(
            inputs=_arrays(npz, "input"),
            outputs_inference=_arrays(npz, "output_inference"),
            outputs_training=training,
            losses=_arrays(npz, "loss"),
        )
    if len(variables) != len(record["variables"]):
        raise ValueError(f"{case_dir}: {len(variables)} variable arrays, "
                         f"{len(record['variables'])} names")
    return LegacyCase(
        writer=writer,
        case=case,
        path=case_dir / "saved_model",
        record=record,
        variables=variables,
        optimizer_variables=opt,
        **loaded,
    )


def directory_sha256(path: Path | str) -> str:
    """sha256 over every file under ``path``: relative name and bytes, in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()
