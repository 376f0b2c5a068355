"""Fail when a module of the integration is below its coverage floor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FLOOR = 95.0
FULL = {"custom_components/bambu_cloud/config_flow.py"}


def main(report: str) -> int:
    """Check every measured file against its floor; print the offenders."""
    files = json.loads(Path(report).read_text())["files"]
    failures = []
    for name, data in sorted(files.items()):
        percent = data["summary"]["percent_covered"]
        floor = 100.0 if name in FULL else FLOOR
        if percent < floor:
            failures.append(f"{name}: {percent:.1f} % < {floor:.0f} %")
    total = sum(d["summary"]["covered_lines"] for d in files.values())
    statements = sum(d["summary"]["num_statements"] for d in files.values())
    percent_all = 100 * total / max(statements, 1)
    print(f"[coverage] {len(files)} modules, {percent_all:.1f} % lines")
    for failure in failures:
        print(f"[coverage] below floor: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
