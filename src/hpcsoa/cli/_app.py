"""Placeholder entry point until the CLI issue lands: ``hpcsoa demo`` runs a protocol smoke."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo"]:
        from ..protocol import Operation, build_request

        req = build_request(Operation.GET_CLUSTERS, cluster=None)
        print(f"hpcsoa demo (protocol smoke): {req.method} {req.target}")
        return 0
    print("usage: hpcsoa demo", file=sys.stderr)
    return 1
