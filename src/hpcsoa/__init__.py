"""hpcsoa: an asyncio client (and a faithful emulator) for the HPC Pack REST web service.

Layers point one way: ``protocol`` (sans-IO) ← ``transport`` ← ``soa`` / ``scheduler`` ←
``HpcClient`` ← ``cli``. The ``emulator`` uses ``protocol`` only.
"""

from ._exceptions import ApiError as ApiError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequest as BadRequest
from ._exceptions import BatchCommitted as BatchCommitted
from ._exceptions import ClientClosed as ClientClosed
from ._exceptions import Conflict as Conflict
from ._exceptions import ConnectError as ConnectError
from ._exceptions import ConnectTimeout as ConnectTimeout
from ._exceptions import DecodeError as DecodeError
from ._exceptions import EncodeError as EncodeError
from ._exceptions import FieldTooLarge as FieldTooLarge
from ._exceptions import Forbidden as Forbidden
from ._exceptions import HpcError as HpcError
from ._exceptions import IncompletePage as IncompletePage
from ._exceptions import MessageTooLarge as MessageTooLarge
from ._exceptions import NetworkError as NetworkError
from ._exceptions import NotFound as NotFound
from ._exceptions import PagerAlreadyStarted as PagerAlreadyStarted
from ._exceptions import PayloadTooLarge as PayloadTooLarge
from ._exceptions import PoolTimeout as PoolTimeout
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import ReadError as ReadError
from ._exceptions import ReadTimeout as ReadTimeout
from ._exceptions import RetryError as RetryError
from ._exceptions import ServerBusy as ServerBusy
from ._exceptions import ServerError as ServerError
from ._exceptions import ServiceUnavailable as ServiceUnavailable
from ._exceptions import SessionClosed as SessionClosed
from ._exceptions import SessionError as SessionError
from ._exceptions import SessionNotFound as SessionNotFound
from ._exceptions import StreamConsumed as StreamConsumed
from ._exceptions import TLSVerificationError as TLSVerificationError
from ._exceptions import TooManyRequests as TooManyRequests
from ._exceptions import TransportError as TransportError
from ._exceptions import TransportTimeout as TransportTimeout
from ._exceptions import UnsafeXMLError as UnsafeXMLError
from ._exceptions import UsageError as UsageError
from ._exceptions import WriteError as WriteError
from .protocol import BrokerClientStatus as BrokerClientStatus
from .protocol import EndOfResponsesReason as EndOfResponsesReason

# --- client exports (SOA client issue) ---
# --- scheduler exports (scheduler issue) ---

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "BatchCommitted",
    "BrokerClientStatus",
    "ClientClosed",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "DecodeError",
    "EncodeError",
    "EndOfResponsesReason",
    "FieldTooLarge",
    "Forbidden",
    "HpcError",
    "IncompletePage",
    "MessageTooLarge",
    "NetworkError",
    "NotFound",
    "PagerAlreadyStarted",
    "PayloadTooLarge",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "RetryError",
    "ServerBusy",
    "ServerError",
    "ServiceUnavailable",
    "SessionClosed",
    "SessionError",
    "SessionNotFound",
    "StreamConsumed",
    "TLSVerificationError",
    "TooManyRequests",
    "TransportError",
    "TransportTimeout",
    "UnsafeXMLError",
    "UsageError",
    "WriteError",
    "__version__",
]
