"""Run the benchmarks and print markdown tables (see benchmarks/__init__.py)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts (same keys) as a GitHub markdown table."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark names (bench_<name>.py); default all")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    names = args.names or sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                                 if m.name.startswith("bench_"))
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"\n## {name}: {module.__doc__.strip().splitlines()[0]}\n", flush=True)
        for title, rows in module.run():
            print(f"### {title}\n\n{markdown_table(rows)}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
