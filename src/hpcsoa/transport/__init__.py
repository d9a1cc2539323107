"""Transport layer: the only client package that imports aiohttp.

``AiohttpTransport`` sends one request and translates aiohttp failures into the
``TransportError`` family; ``Requester`` adds routing (URI form, cluster, broker authority),
``api-version``, error mapping and retries (tenacity, built in ``_retry.py`` only). Layers above
(``soa``, ``scheduler``, ``HpcClient``) use ``Requester.call`` / ``Requester.stream``.
"""

from ._aiohttp import AiohttpTransport as AiohttpTransport
from ._aiohttp import translate_error as translate_error
from ._base import HttpResponse as HttpResponse
from ._base import StreamingResponse as StreamingResponse
from ._base import Transport as Transport
from ._requester import Requester as Requester
from ._requester import StreamContext as StreamContext
from ._retry import build_retrying as build_retrying
from ._retry import call_with_retry as call_with_retry

__all__ = [
    "AiohttpTransport",
    "HttpResponse",
    "Requester",
    "StreamContext",
    "StreamingResponse",
    "Transport",
    "build_retrying",
    "call_with_retry",
    "translate_error",
]
