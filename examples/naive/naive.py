"""A deliberately naive consumer of emugen's landing zone: right on every record, wrong on
delivery. It is the DuckDB medallion (examples/duckdb) with one classic bug: it removes
duplicate events within each landed file only, so an at-least-once redelivery (the same event,
byte for byte, in a later file) is counted twice in gold.

    python examples/naive/naive.py LANDING_ROOT OUT_DIR

`emugen grade --gold OUT_DIR/gold_company_window.parquet --policy exact` fails on the windows
the copies fall in, naming each copy as `redelivered_counted` by (batch_id, row_no, event_id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "duckdb"))
from medallion import medallion  # noqa: E402 - the DuckDB example, a sibling folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the landing zone's root folder (JSON Lines)")
    parser.add_argument("out", type=Path, help="where the Parquet tables go")
    args = parser.parse_args(argv)
    for table, n in medallion(args.root, args.out, per_file=True).items():
        print(f"{table}: {n} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
