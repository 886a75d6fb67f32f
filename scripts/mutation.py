"""Mutation testing of rooflens's formula modules: which single-change mutants the specification tests
catch, module by module.

Runs mutmut (configured in pyproject.toml under [tool.mutmut]: the modules to mutate and the tests
that may kill them) and reports, per module, the mutants killed, survived and without a covering
test. Mutants that only change a label (a string literal changed or replaced by None: an operator's name,
block, dtype name, an error message) are counted apart as "text": the kill rate is over the mutants
that change a number, an operator, a comparison, a call or a branch. Mutants
judged equivalent (no input can tell them from the original) are listed with the reason in
``scripts/mutation_equivalents.toml`` and left out of the rate.

    python scripts/mutation.py            # run (about 10-20 minutes on 2 cores) and report
    python scripts/mutation.py --report   # report the last run again
    python scripts/mutation.py --survivors rooflens.memory   # list a module's survivors with diffs
    python scripts/mutation.py --only 'rooflens.memory.*'   # re-run one module's mutants

Not part of CI: it is slow, and its figures are quoted in closing notes.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.toml"
TARGET = 0.90
# mutmut's exit codes: the test run's own (non-zero: the mutant was caught), or its markers.
NO_TESTS, SKIPPED = 33, 34


@dataclass
class Mutant:
    name: str  # rooflens.memory.x_footprint__mutmut_12
    module: str
    status: str  # killed | survived | no tests | not run
    diff: str
    text_only: bool


def run_mutmut(only: list[str]) -> None:
    log = ROOT / "mutants-run.log"
    with log.open("w") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", "2", *only],
            cwd=ROOT,
            stdout=fh,
            stderr=fh,
        )
    if done.returncode not in (0, 1):
        sys.exit(f"mutmut failed (exit {done.returncode}); see {log}")


def _functions(source: str) -> dict[str, str]:
    """Source of every function (methods too) in a mutmut-generated module, by name."""
    lines = source.splitlines()
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


_STRING = r"(['\"]).*?\1"


def _label_only(removed: list[str], added: list[str]) -> bool:
    """Whether a mutant changes only a label: a string literal changed, replaced by None, or a
    keyword argument holding a string literal dropped (names, blocks, dtypes, messages)."""
    if len(removed) != len(added) or not removed:
        return False
    for before, after in zip(removed, added, strict=True):
        a, b = re.sub(_STRING, "''", before), re.sub(_STRING, "''", after)
        if a == b:
            continue
        parts = a.split("''")
        single = ["''".join(parts[:i]) + "None" + "''".join(parts[i:]) for i in range(1, len(parts))]
        if b in single or re.sub(r",?\s*\w+=''", "", a) == b.replace(" ,", ","):
            continue
        if re.sub(r"''\s*,\s*", "", a, count=1) == b or re.sub(r",\s*''", "", a, count=1) == b:
            continue
        return False
    return True


def _describe(original: str, mutated: str) -> tuple[str, bool]:
    """The changed lines, and whether only labels (string literals) changed."""
    changed = [
        line[1:].strip()
        for line in difflib.unified_diff(original.splitlines(), mutated.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    removed = [line for line in changed[: len(changed) // 2]]
    added = [line for line in changed[len(changed) // 2 :]]
    return " -> ".join(" | ".join(side) for side in (removed, added)), _label_only(removed, added)


def collect() -> list[Mutant]:
    mutants = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        source_path = meta.with_suffix("")
        module = ".".join(source_path.relative_to(MUTANTS / "src").with_suffix("").parts)
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        functions = _functions(source_path.read_text())
        for name, code in codes.items():
            function, _, number = name.rpartition(".")[2].rpartition("__mutmut_")
            original, mutated = (
                functions.get(f"{function}__mutmut_orig", ""),
                functions.get(f"{function}__mutmut_{number}", ""),
            )
            diff, text_only = _describe(
                original.replace("__mutmut_orig", ""), mutated.replace(f"__mutmut_{number}", "")
            )
            if code is None:
                status = "not run"
            elif code == NO_TESTS:
                status = "no tests"
            elif code == SKIPPED:
                status = "skipped"
            else:
                status = "survived" if code == 0 else "killed"
            mutants.append(Mutant(name, module, status, diff, text_only))
    return mutants


COLUMNS = ("mutants", "text", "equivalent", "killed", "survived", "no tests", "rate")


def _row(label: str, c: Counter) -> str:
    counted = c["killed"] + c["survived"] + c["no tests"]
    rate = c["killed"] / counted if counted else 1.0
    cells = [sum(c.values()), c["text"], c["equivalent"], c["killed"], c["survived"], c["no tests"]]
    return f"{label:34}" + "".join(f"{v:>11}" for v in cells) + f"{rate:>11.1%}"


def _rate(c: Counter) -> float:
    counted = c["killed"] + c["survived"] + c["no tests"]
    return c["killed"] / counted if counted else 1.0


def report(mutants: list[Mutant]) -> int:
    equivalent = tomllib.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.exists() else {}
    stale = [name for name in equivalent if name not in {m.name for m in mutants}]
    by_module: dict[str, Counter] = defaultdict(Counter)
    for m in mutants:
        key = "text" if m.text_only else "equivalent" if m.name in equivalent else m.status
        by_module[m.module][key] += 1
    header = f"{'module':34}" + "".join(f"{c:>11}" for c in COLUMNS)
    print(header, "-" * len(header), sep="\n")
    totals: Counter = Counter()
    for module, c in sorted(by_module.items()):
        totals.update(c)
        print(_row(module, c))
    print("-" * len(header), _row("all", totals), sep="\n")
    if stale:
        print(f"\n{len(stale)} entries of {EQUIVALENTS.name} name no current mutant: {stale[:5]}")
    below = sum(_rate(c) < TARGET for c in by_module.values())
    print(f"\n{below} module(s) below the {TARGET:.0%} target")
    return 1 if below else 0


def survivors(mutants: list[Mutant], prefix: str) -> None:
    equivalent = tomllib.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.exists() else {}
    for m in mutants:
        live = m.status in ("survived", "no tests") and not m.text_only and m.name not in equivalent
        if m.module.startswith(prefix) and live:
            print(f"{m.name} [{m.status}]\n    {m.diff}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", action="store_true", help="report the last run without running")
    parser.add_argument("--survivors", metavar="MODULE", help="list a module's surviving mutants")
    parser.add_argument(
        "--only", nargs="*", default=[], metavar="GLOB", help="mutant names to run, e.g. 'rooflens.memory.*'"
    )
    args = parser.parse_args()
    if not (args.report or args.survivors):
        run_mutmut(args.only)
    mutants = collect()
    if args.survivors:
        survivors(mutants, args.survivors)
        return 0
    return report(mutants)


if __name__ == "__main__":
    sys.exit(main())
