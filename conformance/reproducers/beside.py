"""The reproducer scripts written beside a report: one per failure the tool can rebuild.

``--conformance-report=PATH`` makes the plugin (on the controller, under xdist) call
:func:`write_beside` with the report's document before it writes it: each failure record then
names its script (``reproducer``, under ``PATH``'s stem + ``.repro/``) or says why there is
none (``no_reproducer``). A script that cannot be made is recorded, never raised.
"""

import json
import re
from pathlib import Path

# At most this many scripts per report (each builds its model once): the rest are named with
# the command that writes them.
MAX_SCRIPTS = 20


def scripts_folder(report_path):
    """``out/report.json`` -> ``out/report.repro``."""
    report_path = Path(report_path)
    return report_path.parent / f"{report_path.stem}.repro"


def script_name(clause_id, test):
    """A failure's script name, from its clause and test id (parameters included)."""
    base = re.sub(r"\W+", "_", test.split("::")[-1]).strip("_")[:80] or "spec"
    return f"repro_{clause_id.lower().replace('-', '_')}_{base}.py"


def reproducer_path(report_path, clause_id, test):
    return scripts_folder(report_path) / script_name(clause_id, test)


def _drawn_spec(failure):
    try:
        spec = json.loads(failure.get("spec") or "")
    except ValueError:
        return None
    return spec if isinstance(spec, dict) and "nodes" in spec else None


def write_beside(document, report_path, limit=MAX_SCRIPTS):
    """Write the scripts of ``document``'s failures beside ``report_path``; set each failure's
    ``reproducer`` (the path) or ``no_reproducer`` (why none). Returns the paths written."""
    from conformance.reproducers.source import FIXTURE_CLAUSES, ReproduceError, refusal

    folder = scripts_folder(report_path)
    impl = document.get("implementation") or "reference"
    written, names = [], set()
    for clause_id, result in document.get("clauses", {}).items():
        for failure in result.get("failures", []):
            spec = _drawn_spec(failure)
            why = refusal(None, clause_id)
            if why is None and spec is None and clause_id not in FIXTURE_CLAUSES:
                why = "the failing model is the test's own fixed model, not a drawn spec"
            if why is None and len(written) >= limit:
                why = (f"only the report's first {limit} failures get a script: "
                       f"{failure.get('script', 'python -m conformance reproduce')}")
            source = None
            if why is None:
                try:
                    source = _source(spec, clause_id, impl, failure)
                except ReproduceError as exc:
                    why = str(exc)
                except Exception as exc:  # noqa: BLE001  (recorded: the session goes on)
                    text = " ".join(str(exc).split())[:300]
                    why = f"the script could not be made: {type(exc).__name__}: {text}"
            if why is not None:
                failure["reproducer"] = None
                failure["no_reproducer"] = why
                continue
            path = reproducer_path(report_path, clause_id, failure.get("test", ""))
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(source, encoding="utf-8")
            except OSError as exc:
                failure["reproducer"] = None
                failure["no_reproducer"] = f"the script could not be written: {exc}"
                continue
            failure["reproducer"] = str(path)
            written.append(path)
            names.add(path.name)
    if folder.is_dir():  # an earlier run's scripts would name failures this run lacks
        for stale in folder.glob("repro_*.py"):
            if stale.name not in names:
                stale.unlink()
    return written


def _source(spec, clause_id, impl, failure):
    from conformance.environment import quiet_tensorflow
    from conformance.reproducers.source import fixture_script_source, script_source
    from strategies.spec import ModelSpec

    quiet_tensorflow()
    if spec is None:
        return fixture_script_source(clause_id, impl, message=failure.get("message", ""),
                                     test=failure.get("test", ""))
    return script_source(ModelSpec.from_dict(spec), clause_id, impl,
                         message=failure.get("message", ""), test=failure.get("test", ""))
