"""SOA layer: sessions, batches, streamed responses and ``session.map`` (spec §3–§5).

Built on ``hpcsoa.transport.Requester``; never imports aiohttp. ``SoaSession`` comes from
``HpcClient.create_session`` / ``attach_session``; ``Batch`` from ``session.batch(name)``;
``ResponseStream`` from ``batch.responses()``; ``MapStream`` from ``session.map(inputs)``.
"""

from ._batch import Batch as Batch
from ._batch import BatchState as BatchState
from ._map import MapStream as MapStream
from ._requests import MapResult as MapResult
from ._requests import Request as Request
from ._requests import Response as Response
from ._responses import ResponseStream as ResponseStream
from ._session import SoaSession as SoaSession

__all__ = [
    "Batch",
    "BatchState",
    "MapResult",
    "MapStream",
    "Request",
    "Response",
    "ResponseStream",
    "SoaSession",
]
