"""Typed (SOAP) requests: call the ``Echo`` operation of CcpEchoSvc's IEchoSvc contract.

python examples/soap.py             # embedded emulator (see _connect.py for a real one)
"""

from __future__ import annotations

import hpcsoa
from _connect import main


# README: soap
async def run(client: hpcsoa.HpcClient) -> None:
    requests = [
        hpcsoa.Request.wcf("Echo", {"input": word}, contract="IEchoSvc")
        for word in ("one", "two", "three")
    ]  # action http://tempuri.org/IEchoSvc/Echo, body <Echo xmlns=...><input>..</input></Echo>
    session = await client.create_session("CcpEchoSvc")
    async with session:
        async for r in session.map(requests, generic=False, ordered=True):
            print(r.index, r.output)  # the text of <EchoResult>


# README: end


if __name__ == "__main__":
    main(run)
