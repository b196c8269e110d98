"""``python -m bench`` (``make bench``): the figures of issues 3, 11 and 13, each measured in one run
against its baseline. ``--quick`` for a smoke run at small sizes, ``--only N`` for one figure."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_PG_URL, Figure, say

FULL = {
    1: {
        "small_items": 100,
        "big_items": 100_000,
        "big_grants": 10_000,
        "big_vendors": 100,
        "reps": 2000,
    },
    2: {"duration": 5, "rounds": 3},
    3: {"entries": 1_000_000},
    4: {"entries": 1_000_000, "searches": 50},
    5: {"appends": 2000, "rounds": 5},
    6: {"entries": 1_000_000, "samples": 200},
    7: {"accounts": 10_000, "agreements": 1000, "rounds": 5, "steady": 200},
    8: {"duration": 5, "rounds": 2},
}
QUICK = {
    1: {"small_items": 100, "big_items": 5000, "big_grants": 500, "big_vendors": 20, "reps": 400},
    2: {"duration": 1, "rounds": 1},
    3: {"entries": 20_000},
    4: {"entries": 50_000, "searches": 30},
    5: {"appends": 200, "rounds": 2},
    6: {"entries": 50_000, "samples": 50},
    7: {"accounts": 1000, "agreements": 100, "rounds": 2, "steady": 30, "contrast_accounts": 300},
    8: {"duration": 1, "rounds": 1},
}


def run_figure(number: int, workdir: Path, sizes: dict, args) -> Figure:
    from bench import decision, http_load, policy_scale, search, trail_scale, tree, verify

    if number == 1:
        return decision.run(workdir, **sizes)
    if number == 2:
        return http_load.run(workdir, backend=args.http_backend, pg_url=args.pg_url, **sizes)
    if number == 3:
        return verify.run(workdir, **sizes)
    if number == 5:
        return tree.run_append(workdir, pg_url=args.pg_url, **sizes)
    if number == 6:
        return tree.run_proofs(workdir, pg_url=args.pg_url, **sizes)
    if number == 7:
        return policy_scale.run(workdir, pg_url=args.pg_url, **sizes)
    if number == 8:
        return trail_scale.run(workdir, pg_url=args.pg_url, **sizes)
    return search.run(workdir, pg_url=args.pg_url, **sizes)


def show(fig: Figure) -> None:
    verdict = {True: "goal met", False: "GOAL MISSED", None: "-"}[fig.met]
    ratio = "n/a" if fig.ratio is None else f"{fig.ratio:.3f}"
    print(f"\n{fig.number}. {fig.title}")
    print(f"   ratio {ratio}   goal {fig.goal}   {verdict}")
    for key, value in fig.raw.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"   {key}: {value}")
    for note in fig.notes:
        print(f"   note: {note}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", type=int, action="append", choices=sorted(FULL))
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("GOVERN_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server for figures 2 and 4-8 (databases of their own are created "
        "and dropped)",
    )
    parser.add_argument(
        "--http-backend",
        choices=["sqlite", "postgresql"],
        help="figure 2 on this store only (default: both)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    numbers = sorted(set(args.only or FULL))
    workdir = Path(tempfile.mkdtemp(prefix="govern-bench-"))
    print(
        f"govern benchmarks (issues 3, 11 and 13), {'quick' if args.quick else 'full'} sizes, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    figures, started = [], time.perf_counter()
    try:
        for number in numbers:
            say(f"figure {number}")
            t0 = time.perf_counter()
            fig = run_figure(number, workdir, sizes[number], args)
            fig.raw["bench_seconds"] = round(time.perf_counter() - t0, 1)
            figures.append(fig)
            show(fig)
            sys.stdout.flush()
    finally:
        if args.keep:
            say(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print("summary: " + "; ".join(_summary(f) for f in figures))
    if args.json:
        args.json.write_text(json.dumps([vars(f) for f in figures], indent=2, default=str))
    return 0


def _summary(fig: Figure) -> str:
    ratio = "" if fig.ratio is None else f" ratio {fig.ratio:.3f}"
    return f"{fig.number}:{ratio} ({'met' if fig.met else 'missed'} {fig.goal})"


if __name__ == "__main__":
    sys.exit(main())
