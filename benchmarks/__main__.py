"""``python -m benchmarks [NAME ...]`` (``make bench``): run the benchmarks and update ``benchmarks/RESULTS.md``.

Every ``benchmarks/bench_*.py`` module exposes ``main()``, which prints readable tables while it runs and returns
its section of RESULTS.md as markdown (it may be a coroutine function). Names on the command line (``sandbox`` or
``bench_sandbox``) select benchmarks; without any, all run in alphabetical order. Each benchmark's section in
RESULTS.md is replaced by its new one; the sections of benchmarks that did not run are kept as they were.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib
import inspect
import re
import sys
import time
import traceback
from pathlib import Path

from benchmarks._harness import machine_info

PACKAGE_DIR = Path(__file__).resolve().parent
RESULTS = PACKAGE_DIR / "RESULTS.md"
HEADER = """# Cove benchmark results

Written by `make bench` (`python -m benchmarks [NAME ...]`). Each benchmark owns one section below and replaces
it when it runs again; the sections of benchmarks that did not run are kept, with the date they were measured.
Durations are in milliseconds unless a column says otherwise.
"""
SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n.*?<!-- /bench:(?P=name) -->\n?", re.DOTALL)
MACHINE = re.compile(r"<!-- machine -->\n.*?<!-- /machine -->\n?", re.DOTALL)


def discover() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in PACKAGE_DIR.glob("bench_*.py"))


def run_one(name: str) -> str | None:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    main = getattr(module, "main", None)
    if main is None:
        raise RuntimeError(f"benchmarks/bench_{name}.py has no main()")
    result = main()
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    if result is not None and not isinstance(result, str):
        raise TypeError(f"bench_{name}.main() returned {type(result).__name__}, not a markdown string")
    return result


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


def machine_block(info: dict[str, str]) -> str:
    facts = ", ".join(f"{key} {value}" for key, value in info.items() if key != "date")
    return f"<!-- machine -->\nLast run {info['date']} on: {facts}.\n<!-- /machine -->\n"


def section_block(name: str, body: str, info: dict[str, str]) -> str:
    stamp = f"_Measured {info['date']} — {info['cores']} cores, kernel {info['kernel']}, {info['bwrap']}._"
    return f"<!-- bench:{name} -->\n{body.strip()}\n\n{stamp}\n<!-- /bench:{name} -->\n"


def update_results(path: Path, sections: dict[str, str], info: dict[str, str]) -> None:
    """Replace the named sections (and the machine line) in RESULTS.md, keeping every other section."""
    with path.open("a+") as handle:
        # Benchmarks run by different people at once each rewrite only their own section, one at a time.
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        existing = handle.read()
        kept: dict[str, str] = {m["name"]: m.group(0) for m in SECTION.finditer(existing)}
        for name, body in sections.items():
            kept[name] = section_block(name, body, info)
        order = [m["name"] for m in SECTION.finditer(existing)]
        order += sorted(name for name in kept if name not in order)
        text = HEADER + "\n" + machine_block(info) + "\n" + "\n".join(kept[name] for name in order)
        handle.seek(0)
        handle.truncate()
        handle.write(text.rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available)})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md untouched")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available))
        return 0
    selected = [name.removeprefix("bench_").removesuffix(".py") for name in args.names] or available
    unknown = [name for name in selected if name not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")

    info = machine_info()
    print(f"Machine: {', '.join(f'{k} {v}' for k, v in info.items())}", flush=True)
    failed: list[str] = []
    for name in selected:
        print(f"\n=== bench_{name} ===", flush=True)
        started = time.perf_counter()
        try:
            body = run_one(name)
        except KeyboardInterrupt:
            raise
        except BaseException:
            traceback.print_exc()
            failed.append(name)
            print(f"=== bench_{name} FAILED; its previous section in RESULTS.md is kept ===", flush=True)
            continue
        print(f"=== bench_{name} done in {time.perf_counter() - started:.1f} s ===", flush=True)
        if body is None:
            print(f"(bench_{name} returned no section)")
        elif not args.no_write:
            # Written after each benchmark, so a later failure never loses an earlier result.
            update_results(args.results, {name: body}, info)
    if not args.no_write:
        print(f"\nResults: {args.results}")
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
