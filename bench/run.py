"""Run the pod-tasks benchmark and print its markdown tables.

    python bench/run.py                   # the sizes of the issue, on both servers (long)
    python bench/run.py --quick           # tiny sizes, a smoke test of the script
    python bench/run.py --server rclone --only many --scale 1000

Every row runs against each server of ``--server`` (``rclone serve s3``, then moto's)
and is labelled by it. The tables (and scaling.png) also go to ``--out`` (default
bench/out/).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # import `bench` as a package

from bench import cases, many  # noqa: E402
from bench.measure import Figure, markdown  # noqa: E402
from bench.plot import plot_scaling  # noqa: E402
from bench.workspace import SERVERS, Sizes, Workspace  # noqa: E402

_ALL = ["resolve", "first-resolve", "pooch", "many", "big-fetch", "revalidate", "memory", "publish", "pack"]


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pod-tasks against baselines measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script works, in seconds")
    parser.add_argument("--server", default=",".join(SERVERS), help=f"S3 servers, comma-separated (default {','.join(SERVERS)})")
    parser.add_argument("--runs", type=int, help="samples per figure (default 5)")
    parser.add_argument("--many", type=int, help="objects in the revalidation row (default 1000)")
    parser.add_argument("--cold", type=_counts, help="object counts of the cold fetch rows (default 1000,10000)")
    parser.add_argument("--noop", type=_counts, help="asset counts of the no-op fetch rows (default 1000,5000,20000)")
    parser.add_argument("--scale", type=_counts, help="sets both --cold and --noop")
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
        "cold": args.cold or args.scale, "noop": args.noop or args.scale,
    }
    return dataclasses.replace(sizes, **{k: v for k, v in given.items() if v is not None})


def _unknown(given: list[str], known: list[str], option: str) -> str | None:
    """The error line for names of ``given`` not in ``known``, if any."""
    unknown = set(given) - set(known)
    if unknown:
        return f"{option}: unknown {', '.join(sorted(unknown))}; choose from {', '.join(known)}"
    return None


def _measure(servers: list[str], only: list[str], sizes: Sizes, base: Path) -> tuple[list[Figure], dict[str, many.Scaling]]:
    """Every row of ``only`` on every server: the figures in table order (row, then
    server), and the many-assets figures by server."""
    figures: dict[tuple[str, str], list[Figure]] = {}
    scaling: dict[str, many.Scaling] = {}
    for server in servers:
        with Workspace(server, base) as ws:
            for name in only:
                print(f"... {server}: {name}", file=sys.stderr, end="", flush=True)
                started = time.monotonic()
                if name == "many":
                    found = scaling[server] = many.many_assets(ws, sizes)
                    rows = [found.noop[n] for n in sorted(found.noop)] + [found.cold[n] for n in sorted(found.cold)]
                else:
                    rows = cases.CASES[name](ws, sizes)
                for figure in rows:
                    figure.server = server
                figures[name, server] = rows
                print(f" ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    return [f for name in only for server in servers for f in figures[name, server]], scaling


def _scaling_section(scaling: dict[str, many.Scaling], out: Path) -> list[str]:
    rows = []
    for server, found in scaling.items():
        for figure in many.flatness(found):
            figure.server = server
            rows.append(figure)
    table = ["", "### How cost grows with the number of assets", "", markdown(rows)] if rows else []
    return [*table, "", plot_scaling(scaling, out / "scaling.png")]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sizes = _sizes(args)
    servers = args.server.split(",")
    only = args.only.split(",") if args.only else _ALL
    error = _unknown(only, _ALL, "--only") or _unknown(servers, list(SERVERS), "--server")
    if error:
        print(error, file=sys.stderr)
        return 2
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="pod-bench-"))
    try:
        main_rows, scaling = _measure(servers, only, sizes, base)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    lines = [
        "## pod-tasks benchmark",
        "",
        f"`python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace(" `", "`"),
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"S3 servers on 127.0.0.1: {', '.join(servers)}; {sizes.runs} paired runs per row; "
        f"{time.monotonic() - started:.0f} s in all.",
        "",
        markdown(main_rows),
    ]
    if scaling:
        lines += _scaling_section(scaling, args.out)
    met = sum(f.met for f in main_rows)
    lines += ["", f"{met} of {len(main_rows)} targets met."]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
