"""Send a batch of requests to CcpEchoSvc, commit it and stream the responses back.

python examples/batch.py            # embedded emulator (see _connect.py for a real one)
"""

import hpcsoa
from _connect import main


# README: batch
async def run(client: hpcsoa.HpcClient) -> None:
    session = await client.create_session("CcpEchoSvc")
    async with session:  # closes the session (and its service job) on exit
        batch = session.batch("batch1")
        await batch.send(["alpha", "beta", "gamma"])
        await batch.commit()  # no more requests: the response stream can end
        async with batch.responses() as stream:
            async for r in stream:  # in completion order; user_data says which request
                print(r.user_data, r.output)
        print("status:", (await batch.status()).name)  # FINISHED


# README: end


if __name__ == "__main__":
    main(run)
