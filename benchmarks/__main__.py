"""The benchmark suite: where the time of a glyphlab run goes, as rates and ratios on this machine.

    python -m benchmarks                          # everything (~20 min on 2 idle cores); = make bench
    python -m benchmarks --only startup,synth     # some sections (the others' rows are kept)
    python -m benchmarks --quick                  # small sizes, one repeat: a smoke run
    python -m benchmarks --no-write               # print the table, leave BENCHMARKS.md alone

Run from the checkout's root. Prints one table and writes it into BENCHMARKS.md between the
``bench:begin`` / ``bench:end`` markers (the notes outside them are hand-written). Every figure
is measured in one invocation as the median of several repeats; ratios are taken within a repeat
(A and B interleaved) so a machine shared with other jobs shifts both sides alike. The sections
and what each measures: benchmarks/registry.py.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import BENCHMARKS_MD, FULL, QUICK, Row, load_average, machine
from benchmarks.registry import SECTIONS
from benchmarks.report import format_table, machine_line, write_benchmarks


def main(argv=None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all): {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat: a smoke run, not figures")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3, --quick 1)")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD, help="markdown file to update (BENCHMARKS.md)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
    size = dict(QUICK if args.quick else FULL)
    if args.repeats:
        size["repeats"] = args.repeats
    size["process_repeats"] = args.repeats   # sweep and e2e: whole processes, their own default repeats

    from glyphlab.steps import limit_threads

    limit_threads()  # glyphlab's thread settings (set before torch loads), as in a run
    m = machine()
    print(machine_line(m), flush=True)
    rows: list[Row] = []
    shared: dict = {}
    for section, runner in SECTIONS.items():
        if section not in sections:
            continue
        load = f"{load_average():.1f}"
        print(f"[bench] {section} (load {load}) …", flush=True)
        started = time.perf_counter()
        new = runner(size, shared)
        tag = " (--quick)" if args.quick else ""
        new = [r._replace(load=load, detail=r.detail + tag) for r in new]
        for r in new:
            print(f"  {r.figure}: {r.value}  [{r.verdict}]  {r.detail}", flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
        rows.extend(new)
    print()
    print(format_table(rows))
    if not args.no_write:
        write_benchmarks(args.out, rows, m, sections)
        print(f"\nwrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
