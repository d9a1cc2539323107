"""Serve your own SOA service from the embedded emulator, with a fault plan on top.

The emulator is the test double for code written against HPC Pack: give it a Python
function as a service and script failures (503 + Retry-After, dropped connections,
truncated streams) to see the client retry through them.

    python examples/custom_service.py   # always runs its own emulator
"""

from __future__ import annotations

import asyncio

import hpcsoa
from hpcsoa.emulator import EmulatorServer, FaultPlan


# README: custom-service
async def square(text: str) -> str:  # a generic service: string in, string out
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")  # becomes a fault for this request only
    return str(int(text) ** 2)


PLAN = FaultPlan.from_json(
    {
        "seed": 1,
        "rules": [
            # the second Send Requests call gets 503 + Retry-After: 1 (once)
            {"operation": "send_requests", "nth": 2, "times": 1,
             "status": 503, "headers": {"Retry-After": "1"}},
            # the first response stream is cut after 300 bytes
            {"operation": "get_responses", "times": 1, "truncate_after": 300},
        ],
    }
)  # fmt: skip


async def main() -> None:
    async with EmulatorServer(services={"Squares": square}, fault_plan=PLAN) as server:
        async with hpcsoa.HpcClient(
            server.base_url, username=server.username, password=server.password
        ) as client:
            session = await client.create_session("Squares")
            async with session:
                inputs = [str(i) for i in range(2_000)] + ["oops"]
                results = [r async for r in session.map(inputs, window=500, ordered=True)]
            print(results[12].output, results[-1].fault)  # 144, and the ValueError's fault
            print(f"{len(results)} results; the client retried {session.retried} times")


# README: end


if __name__ == "__main__":
    asyncio.run(main())
