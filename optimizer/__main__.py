"""``python -m optimizer plan < problem.json > plan.json``: exit 0 with the plan (the problem's format version, 1 or 2),
2 with the fault on stderr."""

from __future__ import annotations

import argparse
import json
import sys

from . import ProblemError, plan


def main(argv: list[str] | None = None) -> int:
    """Read a problem from stdin, write its plan to stdout; 2 on a malformed problem or bad JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m optimizer", description="Spot Optimizer planner (format versions 1 and 2)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plan", help="read a problem (JSON) on stdin, write the plan (JSON) on stdout")
    parser.parse_args(argv)
    try:
        problem = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        print(f"problem: invalid JSON: {exc}", file=sys.stderr)
        return 2
    try:
        result = plan(problem)
    except ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
