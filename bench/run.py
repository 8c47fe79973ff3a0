"""Run the pod-tasks benchmark and print its markdown tables.

    python bench/run.py            # the sizes of the issue (a few minutes)
    python bench/run.py --quick    # tiny sizes, a smoke test of the script

The tables (and scaling.png) also go to ``--out`` (default bench/out/).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # import `bench` as a package

from bench import cases  # noqa: E402
from bench.measure import Figure, markdown  # noqa: E402
from bench.plot import plot_scaling  # noqa: E402
from bench.workspace import Sizes, Workspace  # noqa: E402

_ALL = ["resolve", "pooch", "many", "big-fetch", "revalidate", "memory", "publish"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pod-tasks against baselines measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script works, in seconds")
    parser.add_argument("--runs", type=int, help="samples per figure (default 5)")
    parser.add_argument("--many", type=int, help="assets in the no-op, cold and revalidation rows (default 1000)")
    parser.add_argument("--scale", help="asset counts for the scaling table, comma-separated (default 100,1000,5000)")
    parser.add_argument("--pooch-mb", type=int, help="size of the resolve-vs-pooch asset (default 200)")
    parser.add_argument("--big-mb", type=int, help="size of the cold fetch and publish object (default 512)")
    parser.add_argument("--huge-mb", type=int, help="size of the peak-memory object (default 1024)")
    parser.add_argument("--only", help=f"run only these rows, comma-separated: {','.join(_ALL)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out", help="where results go")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (data, caches, projects)")
    return parser.parse_args(argv)


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    given = {
        "runs": args.runs, "many": args.many, "pooch_mb": args.pooch_mb, "big_mb": args.big_mb, "huge_mb": args.huge_mb,
        "scale": tuple(int(n) for n in args.scale.split(",")) if args.scale else None,
    }
    return dataclasses.replace(sizes, **{k: v for k, v in given.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sizes = _sizes(args)
    only = args.only.split(",") if args.only else _ALL
    unknown = set(only) - set(_ALL)
    if unknown:
        print(f"--only: unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(_ALL)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    figures: dict[str, list[Figure]] = {}
    scaling = None
    with Workspace(keep=args.keep) as ws:
        for name in only:
            print(f"... {name}", file=sys.stderr, flush=True)
            if name == "many":
                scaling = cases.many_assets(ws, sizes)
                figures[name] = [scaling.noop[sizes.many], scaling.cold[sizes.many]]
            else:
                figures[name] = cases.CASES[name](ws, sizes)
    main_rows = [f for name in _ALL if name in figures for f in figures[name]]
    lines = [
        "## pod-tasks benchmark",
        "",
        f"`python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace(" `", "`"),
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"moto S3 server on 127.0.0.1; {sizes.runs} paired runs per row; "
        f"{time.monotonic() - started:.0f} s in all.",
        "",
        markdown(main_rows),
    ]
    if scaling is not None:
        rows = [scaling.noop[n] for n in sorted(scaling.noop)] + [scaling.cold[n] for n in sorted(scaling.cold)]
        lines += ["", "### How cost grows with the number of assets", "", markdown(rows + cases.flatness(scaling))]
        lines += ["", plot_scaling(scaling, args.out / "scaling.png")]
    met = sum(f.met for f in main_rows)
    lines += ["", f"{met} of {len(main_rows)} targets met."]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
