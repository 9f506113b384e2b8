"""``python -m optimizer plan < problem.json > plan.json``: exit 0 with the plan (the problem's format version, 1 or 2),
2 with the fault on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator

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
        with _solver_chatter_to_stderr():
            result = plan(problem)
    except ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


@contextlib.contextmanager
def _solver_chatter_to_stderr() -> Iterator[None]:
    """HiGHS (inside scipy) may print a diagnostic line straight to file descriptor 1: while planning, that
    descriptor points at stderr, so stdout carries the plan's JSON only."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout descriptor (embedded): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
