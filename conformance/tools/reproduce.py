"""``python -m conformance reproduce``: one standalone Python script per failure.

The scripts' source is ``conformance.reproducers`` (the plugin writes them beside a report
too); this module reads reports and specs and writes the files.
"""

import json
import re
import sys
from pathlib import Path

from conformance.reproducers.source import (  # noqa: F401  (the tool's public names)
    COVERED,
    FIXTURE_CLAUSES,
    FRAMEWORK_OF,
    OPEN_EXTRAS,
    REFUSED,
    UNWRITTEN_KINDS,
    ReproduceError,
    fixture_script_source,
    layer_code,
    refusal,
    script_source,
)


def failures_of(report_path, clause=None, test=None):
    """``(clause, test, spec, message)`` of every failure in a JSON report."""
    try:
        document = json.loads(Path(report_path).read_text())
    except (OSError, ValueError) as exc:
        raise ReproduceError(f"cannot read the report {report_path}: {exc}") from exc
    out = []
    for clause_id, result in document.get("clauses", {}).items():
        if clause and clause_id != clause:
            continue
        for failure in result.get("failures", []):
            if test and test not in failure.get("test", ""):
                continue
            try:
                spec = json.loads(failure.get("spec", ""))
            except ValueError:
                spec = None
            if not isinstance(spec, dict) or "nodes" not in spec:
                if clause_id not in FIXTURE_CLAUSES:
                    continue  # a fixed model's failure: no spec to rebuild
                spec = None  # the script builds the clause's own fixed models
            out.append((clause_id, failure.get("test", ""), spec, failure.get("message", "")))
    return document.get("implementation", "reference"), out


def _file_name(clause, test, index):
    base = test.split("::")[-1].split("[")[0] if test else "spec"
    base = re.sub(r"\W", "_", base)
    return f"repro_{clause.lower().replace('-', '_')}_{base}_{index}.py"


def _is_file(name):
    try:
        return Path(name).is_file()
    except OSError:  # a spec given inline, longer than a file name can be
        return False


def add_arguments(parser):
    parser.add_argument("report", nargs="?", help="a JSON report (--conformance-report=...)")
    parser.add_argument("--spec", help="a spec JSON file (instead of a report)")
    parser.add_argument("--clause", help="only this clause (required with --spec)")
    parser.add_argument("--test", help="only failures of tests whose id contains this")
    parser.add_argument("--impl", default=None, help="implementation (with --spec; default: "
                        "the report's, else reference)")
    parser.add_argument("--out", default=".", help="folder for the scripts (default: cwd)")


def main(args):
    from strategies.spec import ModelSpec

    if args.spec:
        if not args.clause:
            raise ReproduceError("--spec needs --clause")
        text = Path(args.spec).read_text() if _is_file(args.spec) else args.spec
        items = [(args.clause, "", json.loads(text), "")]
        impl = args.impl or "reference"
    elif args.report:
        impl, items = failures_of(args.report, args.clause, args.test)
        impl = args.impl or impl
    elif args.clause in FIXTURE_CLAUSES:  # no spec: the clause's own fixed models
        items = [(args.clause, "", None, "")]
        impl = args.impl or "reference"
    else:
        raise ReproduceError("give a REPORT.json or --spec SPEC.json --clause ID (a clause of "
                             f"fixed models alone: {', '.join(FIXTURE_CLAUSES)})")
    if args.clause and refusal(None, args.clause):
        raise ReproduceError(refusal(None, args.clause))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for index, (clause, test, spec_dict, message) in enumerate(items):
        try:
            if spec_dict is None:
                source = fixture_script_source(clause, impl, message=message, test=test)
            else:
                source = script_source(
                    ModelSpec.from_dict(spec_dict), clause, impl, message=message, test=test
                )
        except ReproduceError as exc:
            skipped.append(f"{clause} {test}: {exc}")
            continue
        path = out / _file_name(clause, test, index)
        path.write_text(source)
        written.append(path)
        print(path)
    for line in skipped:
        print(f"not reproduced: {line}", file=sys.stderr)
    if not written:
        raise ReproduceError(
            "no script written" + (f" ({len(skipped)} failure(s) not covered)" if skipped else
                                   " (no failure with a spec in the report)")
        )
    return 0
