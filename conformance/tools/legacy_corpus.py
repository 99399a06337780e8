"""``python -m conformance legacy-corpus``: write the legacy corpus with the real writers.

For each TensorFlow version asked for, a virtual environment with that ``tensorflow`` (and
``tf-keras`` from 2.16 on) is made once and cached (``$CONFORMANCE_LEGACY_VENVS``, default
``~/.cache/keras-savedmodel-conformance/venvs/tf-<version>``); the writer
(``conformance/corpus/legacy_writer.py``) runs in it as a subprocess and writes
``<out>/tf-<version>/<case>/``; this command prints its progress, then rewrites
``<out>/index.json`` (cases, their sha256, the cases a writer could not write and why).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conformance.corpus import SPECS_FILE
from conformance.corpus import legacy as legacy_store

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "conformance" / "corpus" / "legacy_writer.py"

# version -> the requirements of its writer's environment. Before 2.16 tf.keras is Keras 2;
# from 2.16 on it is Keras 3 and Keras 2 is the tf-keras package.
VERSIONS: dict[str, tuple[str, ...]] = {
    "2.12": ("tensorflow==2.12.1",),
    "2.13": ("tensorflow==2.13.1",),
    "2.14": ("tensorflow==2.14.1",),
    "2.15": ("tensorflow==2.15.1",),
    "2.16": ("tensorflow==2.16.2", "tf-keras==2.16.0"),
    "2.17": ("tensorflow==2.17.1", "tf-keras==2.17.0"),
    "2.18": ("tensorflow==2.18.1", "tf-keras==2.18.0"),
    "2.19": ("tensorflow==2.19.1", "tf-keras==2.19.0"),
    "2.20": ("tensorflow==2.20.0", "tf-keras==2.20.1"),
    "2.21": ("tensorflow==2.21.0", "tf-keras==2.21.0"),
}
# The nightly writer: the tox nightly env's pins, overridable by $CONFORMANCE_LEGACY_NIGHTLY
# (space-separated requirements).
NIGHTLY = ("tf-nightly==2.23.0.dev20261026", "tf-keras-nightly==2.23.0.dev2026102618")
# strategies' catalog imports hypothesis; the writer needs nothing else of the suite's.
COMMON = ("hypothesis",)
KNOWN = (*VERSIONS, "nightly")
# Every spec is written by these writers; the others write the real-world cases and a third
# of the specs (spec number % 3 == minor version % 3), so each spec still has a writer in
# every Keras 2 line (tf.keras and tf_keras) and the run takes about half as long.
ALL_SPECS = ("2.12", "2.15", "2.21", "nightly")
SUBSET = (
    "all specs for writers " + ", ".join(f"tf-{v}" for v in ALL_SPECS) + "; for the others "
    "the real-world cases and the specs whose number % 3 equals the minor version % 3"
)
WRITER_TIMEOUT = 3600


class UsageError(ValueError):
    """A bad argument of the command (exit status 2)."""


def parse_versions(text: str, known=KNOWN) -> list[str]:
    """``--versions a,b,...``: each one of ``known``, duplicates dropped, order kept."""
    asked = [v.strip() for v in text.split(",") if v.strip()]
    if not asked:
        raise UsageError(f"--versions: name at least one of {', '.join(known)}")
    unknown = [v for v in asked if v not in known]
    if unknown:
        raise UsageError(
            f"--versions: unknown TensorFlow version(s) {', '.join(unknown)}; known: "
            f"{', '.join(known)}"
        )
    return list(dict.fromkeys(asked))


def case_names() -> list[str]:
    from conformance.corpus import legacy_writer  # numpy and the standard library only

    specs = json.loads(SPECS_FILE.read_text())
    return sorted(specs) + list(legacy_writer.REAL_CASES)


def parse_only(text: str) -> list[str]:
    asked = [c.strip() for c in text.split(",") if c.strip()]
    known = case_names()
    unknown = [c for c in asked if c not in known]
    if unknown:
        raise UsageError(f"--only: unknown case(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    return asked


def default_cases(version: str, all_specs: bool = False) -> list[str]:
    """The cases a full run of ``version``'s writer writes (see ALL_SPECS)."""
    from conformance.corpus import legacy_writer

    specs = sorted(json.loads(SPECS_FILE.read_text()))
    if not (all_specs or version in ALL_SPECS):
        minor = int(version.split(".")[1])
        specs = [s for s in specs if int(s.split("-")[1]) % 3 == minor % 3]
    return specs + list(legacy_writer.REAL_CASES)


def requirements(version: str) -> tuple[str, ...]:
    if version == "nightly":
        pins = os.environ.get("CONFORMANCE_LEGACY_NIGHTLY", "").split() or list(NIGHTLY)
        return (*pins, *COMMON)
    return (*VERSIONS[version], *COMMON)


def venv_root(option: str | None = None) -> Path:
    if option:
        return Path(option)
    default = Path.home() / ".cache" / "keras-savedmodel-conformance" / "venvs"
    return Path(os.environ.get("CONFORMANCE_LEGACY_VENVS") or default)


def writer_name(version: str) -> str:
    return f"tf-{version}"


def ensure_venv(version: str, root: Path, log=print) -> Path:
    """The environment's python, made (or remade, when its requirements changed) first."""
    env = root / writer_name(version)
    python = env / "bin" / "python"
    marker = env / ".legacy-corpus-requirements"
    wanted = "\n".join(requirements(version))
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    log(f"[{writer_name(version)}] creating {env} ({' '.join(requirements(version))})")
    start = time.monotonic()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    # An empty PIP_CONSTRAINT: the machine's global constraints pin the suite's own versions.
    pip_env = dict(os.environ, PIP_CONSTRAINT="")
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *requirements(version)],
        env=pip_env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        # A mirror's index warnings ("Location ... is ignored") would hide pip's error.
        lines = [ln for ln in proc.stderr.splitlines() if "is ignored: it is neither" not in ln]
        raise RuntimeError(
            f"installing {' '.join(requirements(version))} into {env} failed:\n"
            + "\n".join(lines)[-3000:]
        )
    marker.write_text(wanted)
    log(f"[{writer_name(version)}] environment ready in {time.monotonic() - start:.0f} s")
    return python


def run_writer(python: Path, version: str, out: Path, only: list[str], log=print,
               cases: list[str] | None = None) -> dict:
    """Run the writer; returns {"versions": ..., "written": [...], "skipped": {case: why}}."""
    name = writer_name(version)
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), str(WRITER), "--specs", str(SPECS_FILE), "--out", str(target)]
    if only or cases:
        cmd += ["--only", ",".join(only or cases)]
    # The writer imports strategies from this tree, never this environment's packages.
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = {"versions": None, "written": [], "skipped": {}}
    stderr_path = out / f".{name}.stderr"
    start = time.monotonic()
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        for line in proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout
            if "writer" in item:
                result["versions"] = item["writer"]
                log(f"[{name}] writer {item['writer']}")
            elif item.get("status") == "written":
                result["written"].append(item["case"])
                log(f"[{name}] {item['case']}: written ({time.monotonic() - start:.0f} s)")
            elif item.get("status") == "skipped":
                result["skipped"][item["case"]] = item["reason"]
                log(f"[{name}] {item['case']}: SKIPPED {item['reason']}")
        rc = proc.wait(timeout=WRITER_TIMEOUT)
    if rc != 0:
        tail = stderr_path.read_text()[-3000:]
        raise RuntimeError(f"the {name} writer exited with status {rc}:\n{tail}")
    stderr_path.unlink()
    if not only:  # a case this writer no longer writes must not linger
        import shutil

        for stale in sorted(p for p in target.iterdir() if p.is_dir()):
            if stale.name not in result["written"]:
                shutil.rmtree(stale)
    return result


def update_index(out: Path, version: str, result: dict, only: list[str]) -> dict:
    """Merge one writer's result into ``out/index.json`` (its other cases stay as they
    were when only some were rewritten)."""
    doc = legacy_store.index(out)
    doc["format"] = legacy_store.FORMAT
    doc.setdefault("storage", "directories")
    doc["subset"] = SUBSET
    name = writer_name(version)
    old = doc["writers"].get(name, {}) if only else {}
    cases = {c: e for c, e in old.get("cases", {}).items() if c not in only}
    skipped = {c: r for c, r in old.get("skipped", {}).items() if c not in only}
    for case in result["written"]:
        record = json.loads((out / name / case / "record.json").read_text())
        cases[case] = {
            "kind": record["kind"],
            "sha256": legacy_store.directory_sha256(out / name / case),
        }
    skipped.update(result["skipped"])
    doc["writers"][name] = {
        **(result["versions"] or old.get("versions", {})),
        "cases": dict(sorted(cases.items())),
        "skipped": dict(sorted(skipped.items())),
    }
    doc["writers"] = dict(sorted(doc["writers"].items(), key=lambda kv: legacy_store
                                 ._writer_key(kv[0])))
    (out / "index.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


@contextlib.contextmanager
def _index_lock(out: Path):
    with open(out / ".index.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--versions",
        default=",".join(VERSIONS),
        help=f"comma-separated TensorFlow versions (default all: {','.join(VERSIONS)}; "
        "also: nightly)",
    )
    parser.add_argument(
        "--out", default=None,
        help=f"corpus directory (default {legacy_store.LEGACY_DIR.relative_to(ROOT)})",
    )
    parser.add_argument("--only", default="", help="comma-separated case names to rewrite")
    parser.add_argument("--all-specs", action="store_true",
                        help="every writer writes every spec (default: "
                        + SUBSET.replace("%", "%%") + ")")  # argparse formats help with %
    parser.add_argument("--venvs", default=None,
                        help="where the writers' environments are cached (default "
                        "$CONFORMANCE_LEGACY_VENVS or ~/.cache/keras-savedmodel-conformance"
                        "/venvs)")


def main(args) -> int:
    try:
        versions = parse_versions(args.versions)
        only = parse_only(args.only)
    except UsageError as exc:
        print(f"python -m conformance legacy-corpus: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else legacy_store.LEGACY_DIR
    out.mkdir(parents=True, exist_ok=True)
    root = venv_root(args.venvs)
    failed = []
    for version in versions:
        try:
            python = ensure_venv(version, root)
            cases = None if only else default_cases(version, args.all_specs)
            result = run_writer(python, version, out, only, cases=cases)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            print(f"[{writer_name(version)}] FAILED: {exc}", file=sys.stderr)
            failed.append(version)
            continue
        with _index_lock(out):  # two runs into one corpus must not lose each other's entries
            update_index(out, version, result, only)
        print(f"[{writer_name(version)}] {len(result['written'])} written, "
              f"{len(result['skipped'])} skipped")
    if failed:
        print(f"failed writers: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
