"""SIG-STABLE's machinery: the corpus, golden fingerprints, per-worker and per-process runs.

The corpus is a fixed list of specs stored as JSON in ``conformance/corpus/``; the golden
fingerprints beside it were written by the reference (Keras 3) and by tf_keras' own saver
(tf_keras), and are rewritten only by ``python -m conformance corpus --write-golden``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

CORPUS_DIR = Path(__file__).parent / "corpus"
SPECS_FILE = CORPUS_DIR / "specs.json"


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


def golden(framework):
    path = golden_file(framework)
    return json.loads(path.read_text()) if path.exists() else {}


def corpus_inputs(spec, batch=2):
    """Deterministic inputs for a corpus spec, keyed by input name (no Hypothesis)."""
    rng = np.random.default_rng(spec.seed)
    data = {}
    for item in spec.inputs:
        shape = (item.batch_size or batch, *item.shape)
        if item.vocab is not None:
            data[item.name] = rng.integers(0, item.vocab, size=shape).astype(item.dtype)
        elif item.dtype.startswith("int"):
            data[item.name] = rng.integers(0, 4, size=shape).astype(item.dtype)
        else:
            data[item.name] = (rng.standard_normal(shape) * 0.5).astype(item.dtype)
    return data


def fingerprint_spec(implementation, spec):
    """Build ``spec``, save it with ``implementation`` into a temporary path, fingerprint it."""
    import strategies
    from conformance import fingerprint

    model = strategies.build_model(spec, framework=implementation.framework)
    root = tempfile.mkdtemp(prefix="conformance-fp-")
    try:
        path = os.path.join(root, "model")
        implementation.save(model, path)
        digest, _ = fingerprint.fingerprint(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return digest


# Fingerprints this process computed for corpus specs (name -> digest).
_RECORDED = {}


def record(name, digest):
    _RECORDED[name] = digest


def worker_fingerprints(config):
    """This worker's corpus fingerprints: those its tests recorded, the rest computed now.

    Every worker fingerprints every corpus spec, so each is compared across all workers.
    """
    from conformance.plugin import get_state

    state = get_state(config)
    selected = state.selected_clauses
    impl = state.implementation
    if (selected is not None and "SIG-STABLE" not in selected) or (
        impl.claims is not None and "SIG-STABLE" not in impl.claims
    ):
        return {}
    out = {}
    for name in corpus_names():
        if name not in _RECORDED:
            try:
                _RECORDED[name] = fingerprint_spec(impl, corpus_spec(name))
            except Exception as exc:  # reported as a disagreement on the controller
                _RECORDED[name] = f"error: {type(exc).__name__}: {exc}"
        out[name] = _RECORDED[name]
    return out


def compare_workers(per_worker):
    """Lines describing every corpus spec whose fingerprint differs between workers."""
    problems = []
    names = sorted({name for prints in per_worker.values() for name in prints})
    for name in names:
        seen = {worker: prints.get(name) for worker, prints in sorted(per_worker.items())}
        values = {value for value in seen.values() if value is not None}
        if len(values) > 1:
            detail = ", ".join(f"{w}={(v or '')[:16]}" for w, v in seen.items())
            problems.append(f"{name}: workers disagree ({detail})")
        elif sum(v is not None for v in seen.values()) < 2 and len(per_worker) > 1:
            problems.append(f"{name}: fingerprinted on fewer than two workers")
    return problems


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
