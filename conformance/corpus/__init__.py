"""The corpus: a fixed list of specs, their inputs, and their golden fingerprints.

The specs are stored as JSON beside this module (``specs.json``, drawn once by
``python -m conformance corpus --write-specs``); the golden fingerprints were written by the
reference (Keras 3) and by tf_keras' own saver (tf_keras), and are rewritten only by
``python -m conformance corpus --write-golden``. SIG-STABLE, the differential checks and the
benchmarks use them.

The zoo (``zoo.json``) is a second, hand-kept list: real architectures from
``keras.applications`` (``tf_keras.applications`` when the implementation builds with tf_keras),
``weights=None``, 32x32 inputs, as specs of the fixed catalog kind ``Application``, in the
order of the reference's save time. A save takes seconds to tens of seconds, so the suite
takes the first (cheapest) as an explicit example in every profile and the whole zoo under
``nightly`` (``plugin.drawing.ZooExample``).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

CORPUS_DIR = Path(__file__).parent
SPECS_FILE = CORPUS_DIR / "specs.json"
ZOO_FILE = CORPUS_DIR / "zoo.json"


def golden_file(framework):
    return CORPUS_DIR / f"golden-{framework}.json"


@cache
def _corpus_json():
    if not SPECS_FILE.exists():
        return {}
    return json.loads(SPECS_FILE.read_text())


def corpus_names():
    return sorted(_corpus_json())


def corpus_spec(name):
    from strategies.spec import ModelSpec

    return ModelSpec.from_dict(_corpus_json()[name])


def corpus_specs():
    return [(name, corpus_spec(name)) for name in corpus_names()]


@cache
def _zoo_json():
    if not ZOO_FILE.exists():
        return ()
    return tuple((entry["name"], entry["spec"]) for entry in json.loads(ZOO_FILE.read_text()))


def zoo_names():
    """The zoo's model names, cheapest save first (the file's order, not sorted)."""
    return [name for name, _ in _zoo_json()]


def zoo_spec(name):
    from strategies.spec import ModelSpec

    return ModelSpec.from_dict(dict(_zoo_json())[name])


def zoo_specs():
    return [(name, zoo_spec(name)) for name in zoo_names()]


def supported_specs(implementation):
    """The corpus specs ``implementation`` supports (its ``supports``), in order."""
    from conformance.api import unsupported_reason

    return [(n, s) for n, s in corpus_specs() if unsupported_reason(implementation, s) is None]


def golden(framework):
    path = golden_file(framework)
    return json.loads(path.read_text()) if path.exists() else {}


def corpus_inputs(spec, batch=2):
    """Deterministic inputs for a corpus spec, keyed by input name (no Hypothesis)."""
    from strategies.sample import seeded_inputs

    return seeded_inputs(spec, batch)


def fingerprint_spec(implementation, spec):
    """Build ``spec``, save it with ``implementation`` into a temporary path, fingerprint it."""
    import strategies
    from conformance.savedmodel import fingerprint

    root = tempfile.mkdtemp(prefix="conformance-fp-")
    try:
        path = os.path.join(root, "model")
        save_spec = getattr(implementation, "save_spec", None)  # one in another process
        if save_spec is not None:
            save_spec(spec, path)
        else:
            model = strategies.build_model(spec, framework=implementation.framework)
            implementation.save(model, path)
        digest, _ = fingerprint.fingerprint(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return digest


def fingerprints_in_subprocess(impl_spec, hash_seed, timeout=900):
    """Fingerprint the whole corpus in a fresh interpreter with ``PYTHONHASHSEED=hash_seed``."""
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "fingerprint-corpus", "--impl", impl_spec],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"fingerprinting the corpus with PYTHONHASHSEED={hash_seed} failed:\n"
            f"{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])

