"""Push 10 000 inputs through ``session.map``: bounded window, one result per input.

python examples/sweep.py            # embedded emulator (see _connect.py for a real one)
"""

import hpcsoa
from _connect import main


# README: map
async def run(client: hpcsoa.HpcClient) -> None:
    inputs = (f"x={i}" for i in range(10_000))  # any iterable or async iterable, read lazily
    session = await client.create_session("CcpEchoSvc")
    async with session:
        done = faults = 0
        async for r in session.map(inputs, window=2_000):  # at most 2 000 outstanding
            if r.ok:
                done += 1  # r.index, r.input, r.output, r.latency (seconds)
            else:
                faults += 1  # r.fault.code, r.fault.reason: one bad input stops nothing
        print(f"{done} results, {faults} faults, {session.retried} retries")


# README: end


if __name__ == "__main__":
    main(run)
