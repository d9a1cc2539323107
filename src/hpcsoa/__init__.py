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
# isort: split
from ._client import HpcClient as HpcClient
from ._config import USE_DEFAULT as USE_DEFAULT
from ._config import BasicAuth as BasicAuth
from ._config import ClientConfig as ClientConfig
from ._config import PoolLimits as PoolLimits
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._exceptions import RequestFault as RequestFault
from ._paging import AsyncPager as AsyncPager
from .protocol import SessionInfo as SessionInfo
from .protocol import SessionStartInfo as SessionStartInfo
from .protocol import SoaFault as SoaFault
from .soa import Batch as Batch
from .soa import MapResult as MapResult
from .soa import MapStream as MapStream
from .soa import Request as Request
from .soa import Response as Response
from .soa import ResponseStream as ResponseStream
from .soa import SoaSession as SoaSession

# --- scheduler exports (scheduler issue) ---
# isort: split
from .scheduler import ClusterApi as ClusterApi
from .scheduler import Job as Job
from .scheduler import JobPriority as JobPriority
from .scheduler import JobsApi as JobsApi
from .scheduler import JobState as JobState
from .scheduler import JobType as JobType
from .scheduler import Node as Node
from .scheduler import NodeGroup as NodeGroup
from .scheduler import NodesApi as NodesApi
from .scheduler import NodeState as NodeState
from .scheduler import SubtasksApi as SubtasksApi
from .scheduler import Task as Task
from .scheduler import TasksApi as TasksApi
from .scheduler import TaskState as TaskState
from .scheduler import TaskType as TaskType
from .scheduler import UnitType as UnitType

__version__ = "0.1.0"

__all__ = [
    "USE_DEFAULT",
    "ApiError",
    "AsyncPager",
    "AuthenticationError",
    "BadRequest",
    "BasicAuth",
    "Batch",
    "BatchCommitted",
    "BrokerClientStatus",
    "ClientClosed",
    "ClientConfig",
    "ClusterApi",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "DecodeError",
    "EncodeError",
    "EndOfResponsesReason",
    "FieldTooLarge",
    "Forbidden",
    "HpcClient",
    "HpcError",
    "IncompletePage",
    "Job",
    "JobPriority",
    "JobState",
    "JobType",
    "JobsApi",
    "MapResult",
    "MapStream",
    "MessageTooLarge",
    "NetworkError",
    "Node",
    "NodeGroup",
    "NodeState",
    "NodesApi",
    "NotFound",
    "PagerAlreadyStarted",
    "PayloadTooLarge",
    "PoolLimits",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "Request",
    "RequestFault",
    "Response",
    "ResponseStream",
    "RetryError",
    "RetryPolicy",
    "ServerBusy",
    "ServerError",
    "ServiceUnavailable",
    "SessionClosed",
    "SessionError",
    "SessionInfo",
    "SessionNotFound",
    "SessionStartInfo",
    "SoaFault",
    "SoaSession",
    "StreamConsumed",
    "SubtasksApi",
    "TLSVerificationError",
    "Task",
    "TaskState",
    "TaskType",
    "TasksApi",
    "Timeouts",
    "TooManyRequests",
    "TransportError",
    "TransportTimeout",
    "UnitType",
    "UnsafeXMLError",
    "UsageError",
    "WriteError",
    "__version__",
]
