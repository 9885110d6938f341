"""Benchmark of the conntrack parsers on a realistic table: ``python -m tests.bench.parsers``.

Builds one synthetic 65,536-entry table (``tests.bench.synthetic``) as LuCI's
JSON-RPC reply, /proc/net/nf_conntrack text and ``conntrack -L`` text, then
times, per format, the parse against its floor (the least any reader of that
format must do) and measures the parse's peak extra memory. Prints a table, or
JSON with ``--json`` (for comparing commits). Always exits 0: a benchmark is not
a test; missed targets are printed.
"""

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

import orjson

from custom_components.phonehome.core.addresses import address_info
from custom_components.phonehome.core.analyzer import Analyzer
from custom_components.phonehome.core.conntrack import ParseResult, parse_luci_json, parse_proc
from tests.bench import synthetic
from tests.plugin.tools import SHELLS, time_awk_pass

MEMORY_TARGET_MB: Final = 64.0
ANALYSIS_TARGET: Final = 4.0
"""An analyzer pass within this many times orjson.loads of the same table's LuCI JSON."""
MB: Final = 1 << 20
REPO: Final = Path(__file__).resolve().parents[2]
DEFINITIONS: Final = {
    "json floor": "orjson.loads(payload)",
    "json parse": "parse_luci_json(payload): the reply's bytes to classified flows",
    "text floor": "[line.split() for line in text.splitlines()]: the tokens of every line, kept",
    "text parse": "parse_proc(text), for /proc text and conntrack -L text alike",
    "ratio": "parse / floor, each the minimum of --repeat runs after one warm-up run "
    "(address_info's cache warm, as in steady-state polling); gc.collect() before each "
    "run, what a run made is freed after the clock stops",
    "cold ms": "the first parse, with address_info's cache cleared",
    "peak MB": "tracemalloc peak while the parser turns its input (the text, or the JSON "
    f"reply) into flows; the input is not counted; target < {MEMORY_TARGET_MB:g} MB",
    "floor MB": "tracemalloc peak of one floor run (what decoding or splitting alone takes)",
    "result MB": "memory the ParseResult keeps (tracemalloc, after the parse)",
}


@dataclass(frozen=True, slots=True)
class Case:
    """One format: its input size, floor, parse, and the way from input to result."""

    format: str
    label: str
    entries: int
    target: float
    floor: Callable[[], object]
    parse: Callable[[], object]
    """Returns all it made (decoded JSON too), to be freed after the clock stops."""
    prepare: Callable[[], Any]
    """What the parser is given: the text, or the JSON already decoded."""
    convert: Callable[[Any], ParseResult]
    """The parser's own step, whose extra memory is measured."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one format measured."""

    format: str
    label: str
    entries: int
    flows: int
    skipped: int
    floor_ms: float
    parse_ms: float
    ratio: float
    target: float
    met: bool
    cold_ms: float
    floor_peak_mb: float
    peak_mb: float
    result_mb: float
    memory_met: bool


def _luci_entries(document: Any) -> Any:
    """The entry list inside LuCI's JSON-RPC reply."""
    return document["result"][1]["result"]


def _split_lines(text: str) -> list[list[str]]:
    """The text floor: every line's tokens."""
    return [line.split() for line in text.splitlines()]


def _cases(payload: bytes, proc: str, conntrack: str) -> list[Case]:
    """The three formats, built on the given inputs."""

    def luci_floor() -> object:
        return orjson.loads(payload)

    entries = len(_luci_entries(orjson.loads(payload)))
    return [
        Case(
            "luci-json",
            "LuCI JSON",
            entries,
            2.0,
            luci_floor,
            partial(parse_luci_json, payload),
            partial(bytes, payload),
            parse_luci_json,
        ),
        *(
            Case(
                name,
                label,
                text.count("\n"),
                2.5,
                partial(_split_lines, text),
                partial(parse_proc, text),
                partial(str, text),
                parse_proc,
            )
            for name, label, text in (
                ("proc-text", "/proc text", proc),
                ("conntrack-text", "conntrack -L", conntrack),
            )
        ),
    ]


def _clock(run: Callable[[], object]) -> float:
    """Seconds one run takes; what it made is freed after the clock stops."""
    gc.collect()
    start = time.perf_counter()
    made = run()
    elapsed = time.perf_counter() - start
    del made
    return elapsed


def _memory[T](run: Callable[[], T]) -> tuple[T, float, float]:
    """What one run returns, its peak extra memory and the memory it keeps (MB)."""
    gc.collect()
    tracemalloc.start()
    try:
        made = run()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return made, peak / MB, kept / MB


def measure(case: Case, repeat: int) -> Measurement:
    """Cold parse, warm-up, then ``repeat`` floor and parse runs in turn, then memory."""
    address_info.cache_clear()
    cold = _clock(case.parse)
    _clock(case.floor)
    _clock(case.parse)
    floors, parses = [], []
    for _ in range(repeat):
        floors.append(_clock(case.floor))
        parses.append(_clock(case.parse))
    given = case.prepare()
    result, peak, kept = _memory(partial(case.convert, given))
    del given
    flows, skipped = len(result.flows), result.stats.skipped.total()
    del result
    made, floor_peak, _kept = _memory(case.floor)
    del made
    floor, parse = min(floors), min(parses)
    ratio = parse / floor
    return Measurement(
        format=case.format,
        label=case.label,
        entries=case.entries,
        flows=flows,
        skipped=skipped,
        floor_ms=round(floor * 1000, 2),
        parse_ms=round(parse * 1000, 2),
        ratio=round(ratio, 3),
        target=case.target,
        met=ratio <= case.target,
        cold_ms=round(cold * 1000, 2),
        floor_peak_mb=round(floor_peak, 2),
        peak_mb=round(peak, 2),
        result_mb=round(kept, 2),
        memory_met=peak < MEMORY_TARGET_MB,
    )


def missed(results: Sequence[Measurement]) -> list[str]:
    """The targets a run missed, one sentence each."""
    notes = []
    for m in results:
        if not m.met:
            notes.append(f"{m.label}: ratio {m.ratio:.2f} > {m.target:g}")
        if not m.memory_met:
            notes.append(f"{m.label}: peak {m.peak_mb:.1f} MB >= {MEMORY_TARGET_MB:g} MB")
        if m.skipped:
            notes.append(f"{m.label}: {m.skipped} entries skipped (expected none)")
    return notes


def _commit() -> str | None:
    """``git describe --always --dirty`` of the repository, None without git."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _table(results: Sequence[Measurement]) -> str:
    """The fixed-width table."""
    header = (
        f"{'format':<13}{'entries':>8}{'flows':>8}{'floor ms':>10}{'parse ms':>10}"
        f"{'ratio':>7}{'target':>8}{'met?':>6}{'cold ms':>9}{'floor MB':>10}{'peak MB':>9}"
        f"{f'<{MEMORY_TARGET_MB:g}MB?':>8}{'result MB':>11}"
    )
    rows = [header, "-" * len(header)]
    rows.extend(
        f"{m.label:<13}{m.entries:>8,}{m.flows:>8,}{m.floor_ms:>10.1f}{m.parse_ms:>10.1f}"
        f"{m.ratio:>7.2f}{'<= ' + format(m.target, 'g'):>8}{'yes' if m.met else 'NO':>6}"
        f"{m.cold_ms:>9.1f}{m.floor_peak_mb:>10.1f}{m.peak_mb:>9.1f}"
        f"{'yes' if m.memory_met else 'NO':>8}{m.result_mb:>11.1f}"
        for m in results
    )
    return "\n".join(rows)


def _analysis(
    proc: str, payload: bytes, shape: tuple[int, int, int], repeat: int
) -> dict[str, Any]:
    """One analyzer pass over the table's flows (a later poll's), against orjson.loads."""
    flows = parse_proc(proc).flows
    owners = synthetic.lan_owners(shape[1], shape[2])
    analyzer = Analyzer()
    now = datetime.now(UTC)
    first = _clock(lambda: analyzer.update(flows, owners, now))
    passes = [
        _clock(partial(analyzer.update, flows, owners, now + timedelta(seconds=30 * (n + 1))))
        for n in range(repeat)
    ]
    floor = min(_clock(partial(orjson.loads, payload)) for _ in range(repeat))
    ratio = min(passes) / floor
    return {
        "flows": len(flows),
        "first_ms": round(first * 1000, 1),
        "pass_ms": round(min(passes) * 1000, 1),
        "floor_ms": round(floor * 1000, 1),
        "ratio": round(ratio, 2),
        "target": ANALYSIS_TARGET,
        "met": ratio <= ANALYSIS_TARGET,
    }


def _plugin_pass(entries: int) -> dict[str, float]:
    """Seconds of the rpcd plugin's awk pass over the table, per shell present here."""
    return {
        shell: round(time_awk_pass(shell, entries), 2)
        for shell in SHELLS
        if shutil.which(shell) is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table or JSON. Always 0."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=synthetic.ENTRIES, help="table size")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--seed", type=int, default=synthetic.SEED, help="table seed")
    parser.add_argument("--devices", type=int, default=synthetic.DEVICES, help="LAN devices")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.entries < 1 or args.repeat < 1 or args.devices < 2:
        parser.error("--entries and --repeat must be >= 1, --devices >= 2")

    started = time.perf_counter()
    shape = (args.entries, args.devices, args.seed)
    payload = synthetic.luci_payload(*shape)
    proc = synthetic.proc_text(*shape)
    conntrack = synthetic.conntrack_text(*shape)
    synthetic.table.cache_clear()  # the drawn entries are not needed while timing
    cases = _cases(payload, proc, conntrack)
    built = time.perf_counter() - started
    results = [measure(case, args.repeat) for case in cases]
    notes = missed(results)
    plugin = _plugin_pass(args.entries)
    analysis = _analysis(proc, payload, shape, args.repeat)
    if not analysis["met"]:
        notes.append(f"analyzer: {analysis['ratio']}x orjson.loads > {ANALYSIS_TARGET:g}x")
    elapsed = time.perf_counter() - started

    if args.json:
        report = {
            "benchmark": "phonehome conntrack parsers",
            "commit": _commit(),
            "python": platform.python_version(),
            "orjson": orjson.__version__,
            "cpus": os.cpu_count(),
            "entries": args.entries,
            "devices": args.devices,
            "seed": args.seed,
            "repeat": args.repeat,
            "input_bytes": {
                "luci-json": len(payload),
                "proc-text": len(proc.encode()),
                "conntrack-text": len(conntrack.encode()),
            },
            "build_s": round(built, 2),
            "total_s": round(elapsed, 2),
            "memory_target_mb": MEMORY_TARGET_MB,
            "formats": [asdict(m) for m in results],
            "plugin_first_page_s": plugin,
            "analysis": analysis,
            "missed": notes,
            "definitions": DEFINITIONS,
        }
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0

    print(
        f"Phone Home Guard conntrack parsers: {args.entries:,}-entry table "
        f"({args.devices} devices, seed {args.seed}), min of {args.repeat} runs"
    )
    print(
        f"Python {platform.python_version()}, orjson {orjson.__version__}, "
        f"{os.cpu_count()} CPUs, commit {_commit()}; inputs built in {built:.1f} s, "
        f"total {elapsed:.1f} s"
    )
    print()
    print(_table(results))
    print()
    print(
        f"analyzer: one pass over {analysis['flows']:,} flows of {args.devices} devices "
        f"{analysis['pass_ms']} ms, {analysis['ratio']}x orjson.loads of the LuCI JSON "
        f"(target <= {ANALYSIS_TARGET:g}x: {'met' if analysis['met'] else 'NOT MET'}); "
        f"first pass {analysis['first_ms']} ms"
    )
    for shell, seconds in plugin.items():
        print(
            f"rpcd plugin under {shell}: {seconds:.2f} s to aggregate the {args.entries:,}-line "
            "/proc table into a snapshot and answer its first page"
        )
    print()
    width = max(map(len, DEFINITIONS))
    for name, text in DEFINITIONS.items():
        print(
            textwrap.fill(
                text,
                100,
                initial_indent=f"  {name:<{width}}  ",
                subsequent_indent=" " * (width + 4),
            )
        )
    print()
    if notes:
        print("TARGETS MISSED:")
        for note in notes:
            print(f"  - {note}")
    else:
        print("All targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
