"""``python -m conformance findings``: ``docs/findings.md``, the suite's findings as bug reports.

One finding per real divergence the suite knows in an implementation it did not write: the
entries of ``conformance/expectations/tf_keras.txt`` and ``keras_export.txt`` (entries of one
comment block and one test, such as the legacy corpus' parametrizations, make one finding).
Each is written as an upstream bug report: a title, the versions (from the expectations
file's header), the clause and its why (``conformance/contract.py``), the spec's size and
whether it was shrunk (from the comment above the entry), expected vs actual, the upstream
issue the entry names, and the standalone reproducer of ``python -m conformance reproduce``
where the tool writes one.

The page is generated without TensorFlow. The reproducer scripts need it (the tool builds the
model to read its layers' configs and weights; it saves nothing), so they are kept in
``docs/findings/``, one file per (implementation, clause, spec, tool version): the command
writes a missing one (importing TensorFlow then), ``--check`` only reads them. Other data of
findings was looked for: the legacy corpus index records no writer failures (``skipped`` is
empty for every writer), and ``conformance/consumers.py`` holds no findings as data.
"""

import ast
import hashlib
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS_DIR = ROOT / "conformance" / "expectations"
CLAUSES_DIR = ROOT / "conformance" / "clauses"
LEGACY_INDEX = ROOT / "conformance" / "corpus" / "legacy" / "index.json"
DEFAULT_OUT = ROOT / "docs" / "findings.md"
SCRIPTS_DIRNAME = "findings"  # beside the page: docs/findings/
# The implementations the suite did not write, and the library each one is.
IMPLEMENTATIONS = ("tf_keras", "keras_export")
LIBRARY = {"tf_keras": "tf_keras", "keras_export": "Keras"}
REGENERATE = "python -m conformance findings"
# What the script text depends on besides the spec: the tool and the custom classes it inlines.
TOOL_SOURCES = ("conformance/reproducers/source.py", "conformance/reproducers/checks.py",
                "conformance/savedmodel/functions.py", "conformance/expected/fixtures.py",
                "strategies/catalog/custom.py")
TARGET_MEDIAN = 3

_REF = re.compile(r"\b([\w.-]+/[\w.-]+)#(\d+)|(?<![\w/])#(\d+)\b")
_VERSION = re.compile(r"\b(tf_keras|tf\.keras|Keras|TensorFlow) (\d+\.\d+(?:\.\d+)?)\b")


class FindingsError(ValueError):
    """Expectations text the generator cannot read (says where)."""


# --- reading the expectations files -----------------------------------------------------------


@dataclass
class Entry:
    key: str  # clause id or test id
    reason: str
    line: int


@dataclass
class Finding:
    impl: str
    comment: list  # the comment lines above the entries (without '# ')
    entries: list = field(default_factory=list)
    clause: str = ""
    spec: dict | None = None  # the spec JSON on the comment, when it has one
    number: int = 0

    @property
    def test(self):
        key = self.entries[0].key
        return key.split("[", 1)[0] if "::" in key else ""

    @property
    def provenance(self):
        """The comment's first line up to the spec JSON (how the example was found)."""
        first = self.comment[0] if self.comment else ""
        return first.split('{"', 1)[0].rstrip(": ").strip() if '{"' in first else first.strip()


def parse_header(text):
    """``(header text, versions)``: the file's leading comment block and the library versions it
    states, e.g. ``[("tf_keras", "2.21.0"), ("TensorFlow", "2.21.0")]`` (first mention each)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    header = " ".join(lines)
    versions, seen = [], set()
    for name, version in _VERSION.findall(header):
        if name not in seen:
            seen.add(name)
            versions.append((name, version))
    return header, versions


def parse_expectations(text, impl):
    """The findings of one expectations file's text, in file order.

    A block is the comment lines after a blank line (or the header) and the entries that
    follow them; the entries of one block that check one test function make one finding.
    """
    lines = text.splitlines()
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        index += 1  # the header
    findings, comment, current = [], [], None
    for number, line in enumerate(lines[index:], start=index + 1):
        stripped = line.strip()
        if not stripped:
            comment, current = [], None
            continue
        if stripped.startswith("#"):
            if current is not None:  # a comment after entries starts a new block
                comment, current = [], None
            comment.append(stripped[1:].strip())
            continue
        key, _, reason = stripped.partition("#")
        key, reason = key.strip(), reason.strip()
        if not reason:
            raise FindingsError(f"{impl}.txt:{number}: entry {key!r} needs a reason after '#'")
        group = key.split("[", 1)[0]
        if current is None or current.entries[0].key.split("[", 1)[0] != group:
            current = Finding(impl=impl, comment=list(comment))
            current.spec = _spec_of(comment, impl, number)
            findings.append(current)
        current.entries.append(Entry(key=key, reason=reason, line=number))
    return findings


def _spec_of(comment, impl, number):
    first = comment[0] if comment else ""
    if '{"' not in first:  # a comment may hold other braces (signatures={'name': fn})
        return None
    try:
        return json.loads(first[first.index('{"'):])
    except ValueError as exc:
        raise FindingsError(
            f"{impl}.txt: the spec above line {number} is not JSON: {exc}"
        ) from None


def clause_of_tests(clauses_dir=CLAUSES_DIR):
    """``{"test_file.py::test_name": clause id}`` from the ``@pytest.mark.clause`` decorators."""
    out = {}
    for path in sorted(Path(clauses_dir).glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and decorator.args
                        and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr == "clause"
                        and isinstance(decorator.args[0], ast.Constant)):
                    out[f"{path.name}::{node.name}"] = decorator.args[0].value
    return out


def resolve_clauses(findings, tests):
    from conformance.contract import CLAUSE_IDS

    for finding in findings:
        key = finding.entries[0].key
        if "::" not in key:
            finding.clause = key
        else:
            name = key.split("[", 1)[0].rsplit("/", 1)[-1]
            if name not in tests:
                raise FindingsError(f"{finding.impl}: no clause test {name!r} (entry line "
                                    f"{finding.entries[0].line})")
            finding.clause = tests[name]
        if finding.clause not in CLAUSE_IDS:
            raise FindingsError(f"{finding.impl}: unknown clause {finding.clause!r}")


# --- minimality -------------------------------------------------------------------------------


def layer_count(spec):
    """The spec's nodes, a nested sub-model's nodes counted too (the node holding it as well)."""
    total = 0
    for node in spec.get("nodes", ()):
        total += 1
        if node.get("submodel"):
            total += layer_count(node["submodel"])
    return total


def kinds_of(spec):
    out = []
    for node in spec.get("nodes", ()):
        out.append(node["kind"])
        if node.get("submodel"):
            out.extend(kinds_of(node["submodel"]))
    return out


def shrink_status(provenance):
    """``(status, shrunk)`` from how the comment says the example was found; ``shrunk`` is
    True, False, or None where there is no drawn example (a fixture, a whole corpus)."""
    text = provenance.lower()
    if text.startswith("fixture"):
        return "fixture: a fixed model, nothing to shrink", None
    if "not shrunk further" in text:
        return "ci shrinking returned it, not shrunk further (not minimal)", False
    if "not shrunk" in text or (text.startswith("triage") and "shrunk" not in text):
        return "not shrunk: triage's first failing example", False
    if text.startswith("triage"):
        return "triage's first failing example", False
    if text.startswith("corpus spec"):
        return "a fixed corpus spec, not shrunk", False
    if text.startswith("ci") or text.startswith("dev"):
        where = "ci" if text.startswith("ci") else "dev"
        if "nothing to shrink" in text or "minimal already" in text:
            return f"shrunk ({where}: the first example was minimal already)", True
        return f"shrunk ({where})", True
    return "no drawn example", None


# --- upstream ---------------------------------------------------------------------------------


def upstream_of(reason):
    """``(named, related, says_unreported)``: the issue references of the reason, those it
    calls only related, and whether it says no upstream report was found."""
    refs, repo = [], None
    related_at = None
    match = re.search(r"\b(related upstream|related):", reason, flags=re.I)
    if match:
        related_at = match.start()
    named, related = [], []
    for m in _REF.finditer(reason):
        if m.group(1):
            repo = m.group(1)
            ref = f"{repo}#{m.group(2)}"
        elif repo:
            ref = f"{repo}#{m.group(3)}"
        else:
            continue
        if ref in refs:
            continue
        refs.append(ref)
        (related if related_at is not None and m.start() > related_at else named).append(ref)
    unreported = bool(re.search(r"not reported upstream|no upstream report", reason, re.I))
    return named, related, unreported


def upstream_text(named, related, unreported):
    """The entry's upstream line: the issues it names, else the stock sentence (only when it
    names none as this report)."""
    also = " (related: " + ", ".join(_link(r) for r in related) + ")" if related else ""
    if named:
        return ", ".join(_link(r) for r in named) + also
    if related and not unreported:
        return ("no report of this named; the entry names as related only "
                + ", ".join(_link(r) for r in related))
    return "not reported upstream, as far as a search shows" + also


def _link(ref):
    repo, number = ref.split("#")
    return f"[{ref}](https://github.com/{repo}/issues/{number})"


# --- reproducers ------------------------------------------------------------------------------


def _tool_digest(root=ROOT):
    digest = hashlib.sha256()
    for name in TOOL_SOURCES:
        digest.update(name.encode() + b"\0" + (Path(root) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def reproducer_refusal(finding):
    """Why the reproduce tool writes no script for this finding, or None when it does."""
    from conformance.tools.reproduce import FIXTURE_CLAUSES, refusal

    if finding.clause in FIXTURE_CLAUSES:
        return None  # the script builds the clause's own fixed models
    spec = finding.spec
    why = []
    if spec is None or "nodes" not in spec:
        if finding.provenance.startswith("fixture"):
            why.append("the failing model is a fixed fixture, not a drawn spec, and the reproduce "
                       "tool rebuilds drawn specs only")
        elif spec is not None:
            why.append("the failing example is a fault injection, not a model spec, and the "
                       "reproduce tool rebuilds model specs only")
        else:
            why.append("the entry has no single failing spec (it is about fixed models or a "
                       "whole corpus), and the reproduce tool rebuilds one drawn spec")
    tool = refusal(None, finding.clause)
    if tool:
        why.append(tool)
    return "; ".join(why) or None


def reproducer_key(finding, tool_digest):
    document = {"impl": finding.impl, "clause": finding.clause, "spec": finding.spec,
                "test": finding.test, "tool": tool_digest}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def reproducer_name(finding, key):
    return f"repro-{finding.impl}-{finding.clause.lower()}-{key}.py"


def write_reproducer(finding, path):
    """Write the tool's script (imports TensorFlow: the tool builds the model)."""
    from conformance.environment import quiet_tensorflow
    from conformance.tools.reproduce import FIXTURE_CLAUSES, fixture_script_source, script_source
    from strategies.spec import ModelSpec

    quiet_tensorflow()
    if finding.clause in FIXTURE_CLAUSES:
        source = fixture_script_source(finding.clause, finding.impl, test=finding.test)
    else:
        source = script_source(ModelSpec.from_dict(finding.spec), finding.clause, finding.impl,
                               test=finding.test)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


# --- the page ---------------------------------------------------------------------------------


def load_findings(expectations_dir=EXPECTATIONS_DIR, clauses_dir=CLAUSES_DIR):
    """``(findings, headers)``: every finding of the implementations' expectations files,
    numbered; ``headers[impl] = (header text, versions)``."""
    tests = clause_of_tests(clauses_dir)
    findings, headers = [], {}
    for impl in IMPLEMENTATIONS:
        text = (Path(expectations_dir) / f"{impl}.txt").read_text(encoding="utf-8")
        headers[impl] = parse_header(text)
        found = parse_expectations(text, impl)
        resolve_clauses(found, tests)
        findings.extend(found)
    for number, finding in enumerate(findings, start=1):
        finding.number = number
    return findings, headers


def title_of(finding, versions):
    reasons = [e.reason for e in finding.entries]
    tails = {r.rsplit(": ", 1)[-1] for r in reasons}
    if len(reasons) > 1 and len(tails) == 1:  # one divergence seen on several files
        summary = f"{tails.pop()} ({len(reasons)} entries)"
    else:
        summary = re.split(r": |; |\. (?=[A-Z])", reasons[0], maxsplit=1)[0]
    summary = re.sub(r"\s*\(?\b(Upstream|Related upstream):.*$", "", summary)
    summary = re.sub(r"\s*\([^()]*#\d+[^()]*\)", "", summary)  # issue references
    if summary.count("(") > summary.count(")"):  # cut inside a parenthesis
        summary = summary[:summary.rindex("(")]
    summary = summary.strip()
    if len(summary) > 110:
        summary = summary[:110].rsplit(" ", 1)[0] + "..."
    library = LIBRARY.get(finding.impl, finding.impl)
    version = dict(versions).get(library, "")
    return f"{library} {version}: {summary}".replace("  ", " ")


def _versions_text(versions):
    return ", ".join(f"{name} {version}" for name, version in versions) or "not stated"


def _legacy_writers(finding):
    """The writers' versions of the legacy files an entry names (from the corpus index)."""
    if not LEGACY_INDEX.exists():
        return []
    writers = json.loads(LEGACY_INDEX.read_text()).get("writers", {})
    out = []
    for entry in finding.entries:
        match = re.search(r"\[(tf-[\w.]+)/", entry.key)
        if match and match.group(1) in writers:
            w = writers[match.group(1)]
            text = f"{match.group(1)}: {w['package']} {w['keras']}, TensorFlow {w['tensorflow']}"
            if text not in out:
                out.append(text)
    return out


def _median_text(values):
    if not values:
        return "none"
    median = statistics.median(values)
    return f"{median:g}"


def render(findings, headers, scripts, refusals):
    """The page. ``scripts[number]`` is ``(file name, source)`` of a finding's reproducer;
    ``refusals[number]`` says why a finding has none."""
    with_spec = [f for f in findings if f.spec is not None and "nodes" in f.spec]
    sizes = [layer_count(f.spec) for f in with_spec]
    statuses = {f.number: shrink_status(f.provenance) for f in findings}
    not_shrunk = [f for f in with_spec if statuses[f.number][1] is False]
    stopped = [f for f in not_shrunk if "not shrunk further" in statuses[f.number][0]]
    median = statistics.median(sizes) if sizes else None
    distinct = {json.dumps(f.spec, sort_keys=True): layer_count(f.spec) for f in with_spec}
    entries = sum(len(f.entries) for f in findings)
    lines = [
        "# Findings",
        "",
        "<!-- Generated by `python -m conformance findings` (conformance/tools/findings.py) from "
        "conformance/expectations/; do not edit by hand. -->",
        "",
        f"Generated by `{REGENERATE}` from `conformance/expectations/tf_keras.txt` and "
        "`keras_export.txt`; **never edited by hand**: edit an expectations file, then run "
        f"`{REGENERATE}` (`--check` says whether this page is stale; a test runs it).",
        "",
        "Each finding is a divergence from the contract (`conformance/CONTRACT.md`) that the suite "
        "found in an implementation it did not write, written as an upstream bug report. Entries "
        "of one comment block that check one test (the legacy corpus' files) make one finding.",
        "",
        "## Summary",
        "",
        f"- **{len(findings)} findings** ({entries} expectation entries): "
        + ", ".join(f"{impl} {sum(f.impl == impl for f in findings)}" for impl in IMPLEMENTATIONS)
        + ".",
        f"- **Minimality**: {len(with_spec)} findings have a drawn or corpus spec; their median "
        f"size is **{_median_text(sizes)} layer(s)** (nodes of the spec, a nested sub-model's "
        f"counted too; target <= {TARGET_MEDIAN}: "
        + ("met" if median is not None and median <= TARGET_MEDIAN else "**not met**")
        + f"; sizes {', '.join(str(s) for s in sorted(sizes))}). Over the "
        f"{len(distinct)} distinct specs (findings that share a spec counted once) the "
        f"median is {_median_text(list(distinct.values()))}.",
        f"- **Not shrunk**: {len(not_shrunk)} of the {len(with_spec)} specs "
        f"({len(not_shrunk) - len(stopped)} first failing examples of triage or fixed corpus "
        f"specs, {len(stopped)} that ci's shrinking returned without shrinking them further): "
        f"findings {', '.join(str(f.number) for f in not_shrunk) or 'none'}.",
        f"- **Reproducers**: {len(scripts)} findings have a standalone script from "
        "`python -m conformance reproduce` (in `docs/findings/` and inline below); the others "
        "say why the tool writes none. The generator writes the scripts; it does not run them "
        "(`tests/conformance/test_reproduce.py` runs the tool's scripts for expectation entries).",
        "",
        "| # | implementation | clause | finding | layers | shrunk | reproducer | upstream |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in findings:
        named, related, _ = upstream_of(" ".join(e.reason for e in f.entries))
        has_spec = f.spec is not None and "nodes" in f.spec
        shrunk = statuses[f.number][1]
        lines.append(
            f"| [{f.number}](#f{f.number:02d}) | {f.impl} | {f.clause} | "
            f"{_cell(title_of(f, headers[f.impl][1]))} | "
            f"{layer_count(f.spec) if has_spec else '-'} | "
            f"{'-' if shrunk is None else 'yes' if shrunk else 'no'} | "
            f"{'yes' if f.number in scripts else 'no'} | "
            f"{', '.join(named) if named else 'none named'} |"
        )
    lines.append("")
    from conformance.contract import get_clause

    for impl in IMPLEMENTATIONS:
        header, versions = headers[impl]
        lines += [f"## {impl}: {_versions_text(versions)}", "", f"> {header}", ""]
        for f in (f for f in findings if f.impl == impl):
            clause = get_clause(f.clause)
            reasons = " ".join(e.reason for e in f.entries)
            named, related, unreported = upstream_of(reasons)
            status, _ = statuses[f.number]
            lines += [
                f'<a id="f{f.number:02d}"></a>',
                f"### {f.number}. {_md(title_of(f, versions))}",
                "",
                f"- **Versions**: {_versions_text(versions)} (as the expectations file states "
                "them).",
            ]
            writers = _legacy_writers(f)
            if writers:
                lines.append(f"- **Files written by**: {'; '.join(writers)} "
                             "(`conformance/corpus/legacy/index.json`).")
            lines += [
                f"- **Clause**: `{f.clause}`. *Why it matters*: {clause.why}",
                "- **Seen by**: "
                + ", ".join(f"`{e.key}`" for e in f.entries)
                + f" (`conformance/expectations/{impl}.txt`, line "
                + (f"{f.entries[0].line}" if len(f.entries) == 1
                   else f"{f.entries[0].line}-{f.entries[-1].line}") + ").",
            ]
            if f.spec is not None and "nodes" in f.spec:
                kinds = kinds_of(f.spec)
                lines.append(f"- **Model**: {layer_count(f.spec)} layer(s) "
                             f"({', '.join(kinds)}; {f.spec.get('topology')}, "
                             f"{f.spec.get('dtype')}); {status}.")
            elif f.spec is not None:
                lines.append(f"- **Example**: `{json.dumps(f.spec, sort_keys=True)}`, not a model "
                             f"spec; {status}.")
            else:
                lines.append(f"- **Model**: no single drawn spec; {status}.")
            if f.spec is None and f.comment:
                lines.append(f"- **Context**: {_md(' '.join(f.comment))}")
            elif len(f.comment) > 1:
                lines.append(f"- **Context**: {_md(' '.join(f.comment[1:]))}")
            lines += ["- **Expected** (the contract): " + clause.requires]
            if len(f.entries) == 1:
                lines.append(f"- **Actual**: {_md(f.entries[0].reason)}")
            else:
                lines.append("- **Actual**:")
                lines += [f"  - `{e.key.split('[', 1)[-1].rstrip(']')}`: {_md(e.reason)}"
                          for e in f.entries]
            lines.append("- **Upstream**: " + upstream_text(named, related, unreported))
            lines.append("")
            if f.spec is not None and "nodes" in f.spec:
                lines += ["<details><summary>The spec (JSON)</summary>", "", "```json",
                          json.dumps(f.spec, sort_keys=True), "```", "", "</details>", ""]
            if f.number in scripts:
                name, source = scripts[f.number]
                checks = re.search(r'^def (?:check|reproduce)\(.*?\):\n\s+"""(.*?)"""', source,
                                   re.M | re.S)
                checks = " ".join(checks.group(1).split()) if checks else ""
                lines += [
                    f"**Reproducer** ([`docs/findings/{name}`](findings/{name}); exits 1 while "
                    "the divergence is there, as it does when the save or load raises, 0 once it "
                    "is gone"
                    + (f"; it runs the tool's {f.clause} check: {_md(checks)}" if checks else "")
                    + "):",
                    "",
                    "<details><summary>the script</summary>",
                    "",
                    "```python",
                    source.rstrip("\n"),
                    "```",
                    "",
                    "</details>",
                    "",
                ]
            else:
                lines += [f"**Reproducer**: none: {refusals[f.number]}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md(text):
    """Plain text for markdown: ``<`` and ``__`` escaped outside code spans."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("__", "\\_\\_")
    return "`".join(parts)


def _cell(text):
    return _md(text).replace("|", "\\|")


def build(out, *, check=False, root=ROOT):
    """``(page text, problems)``. Writes missing reproducer scripts unless ``check``; in
    ``check`` mode a missing or stray script is a problem."""
    findings, headers = load_findings()
    scripts_dir = Path(out).parent / SCRIPTS_DIRNAME
    digest = _tool_digest(root)
    scripts, refusals, problems, wanted = {}, {}, [], set()
    for f in findings:
        why = reproducer_refusal(f)
        if why:
            refusals[f.number] = why
            continue
        name = reproducer_name(f, reproducer_key(f, digest))
        wanted.add(name)
        path = scripts_dir / name
        if not path.exists():
            if check:
                problems.append(f"missing reproducer {path} (finding {f.number})")
                continue
            write_reproducer(f, path)
        scripts[f.number] = (name, path.read_text())
    stray = sorted(p for p in scripts_dir.glob("repro-*.py") if p.name not in wanted) \
        if scripts_dir.exists() else []
    for path in stray:
        if check:
            problems.append(f"stray reproducer {path} (no finding has it)")
        else:
            path.unlink()
    return render(findings, headers, scripts, refusals), problems


def add_arguments(parser):
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="the page (default docs/findings.md); scripts go beside it in "
                        "findings/")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the page or its scripts differ from what the command "
                        "writes (writes nothing)")


def main(args):
    out = Path(args.out)
    try:
        text, problems = build(out, check=args.check)
    except FindingsError as exc:
        print(f"findings: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = out.read_text() if out.exists() else None
        if current != text:
            problems.insert(0, f"{out} is stale" if current is not None else f"{out} is missing")
        if problems:
            for problem in problems:
                print(f"findings: {problem}", file=sys.stderr)
            print(f"findings: regenerate it with `{REGENERATE}" + (
                f" --out {args.out}`" if out != DEFAULT_OUT else "`")
                + " and commit the page and docs/findings/", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0
