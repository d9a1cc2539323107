"""Sans-IO protocol layer for the HPC Pack REST web service.

Contract: pure and synchronous. This package never imports aiohttp, asyncio, sockets or
clocks; it turns wire bytes into typed values and back, and raises only ``ProtocolError``
subclasses (plus ``ValueError``-compatible ``EncodeError``) on bad input. Both the client and
the emulator build on it.
"""

from ._models import (
    END_OF_GET_RESPONSE_ACTION as END_OF_GET_RESPONSE_ACTION,
)
from ._models import (
    GENERIC_NAMESPACE as GENERIC_NAMESPACE,
)
from ._models import (
    GENERIC_REPLY_ACTION as GENERIC_REPLY_ACTION,
)
from ._models import (
    GENERIC_REQUEST_ACTION as GENERIC_REQUEST_ACTION,
)
from ._models import BrokerClientStatus as BrokerClientStatus
from ._models import EndOfResponses as EndOfResponses
from ._models import EndOfResponsesReason as EndOfResponsesReason
from ._models import GenericRequest as GenericRequest
from ._models import GenericResponse as GenericResponse
from ._models import HttpRequest as HttpRequest
from ._models import ServiceVersion as ServiceVersion
from ._models import SessionInfo as SessionInfo
from ._models import SessionStartInfo as SessionStartInfo
from ._models import SoaFault as SoaFault
from ._models import SoapRequest as SoapRequest
from ._models import SoapResponse as SoapResponse
from ._models import WebServiceFault as WebServiceFault
from ._routes import DEFAULT_API_VERSION as DEFAULT_API_VERSION
from ._routes import ApiVersion as ApiVersion
from ._routes import Operation as Operation
from ._routes import Route as Route
from ._routes import RouteMatch as RouteMatch
from ._routes import UriForm as UriForm
from ._routes import build_request as build_request
from ._routes import match_route as match_route
from ._routes import parse_bool as parse_bool
from ._routes import query_lookup as query_lookup
from ._routes import resolve_api_version as resolve_api_version
from ._routes import route_for as route_for
