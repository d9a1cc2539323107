"""The scheduler layer: jobs, tasks, subtasks, nodes and cluster operations (spec §6–§8).

``HpcClient`` exposes these as ``client.jobs``, ``client.tasks`` (with ``.subtasks``),
``client.nodes`` and ``client.cluster``. Each API takes the client's ``Requester``; list
operations return :class:`~hpcsoa.AsyncPager` objects that follow continuation tokens.
Results are :class:`Job`, :class:`Task` and :class:`Node` models whose properties are parsed
per the catalog of spec Appendix A, with the raw text kept.
"""

from ..protocol._catalog import JobPriority as JobPriority
from ..protocol._catalog import JobState as JobState
from ..protocol._catalog import JobType as JobType
from ..protocol._catalog import NodeState as NodeState
from ..protocol._catalog import TaskState as TaskState
from ..protocol._catalog import TaskType as TaskType
from ..protocol._catalog import UnitType as UnitType
from ._cluster import ClusterApi as ClusterApi
from ._jobs import JobsApi as JobsApi
from ._models import Job as Job
from ._models import Node as Node
from ._models import NodeGroup as NodeGroup
from ._models import Task as Task
from ._nodes import NodesApi as NodesApi
from ._tasks import SubtasksApi as SubtasksApi
from ._tasks import TasksApi as TasksApi

__all__ = [
    "ClusterApi",
    "Job",
    "JobPriority",
    "JobState",
    "JobType",
    "JobsApi",
    "Node",
    "NodeGroup",
    "NodeState",
    "NodesApi",
    "SubtasksApi",
    "Task",
    "TaskState",
    "TaskType",
    "TasksApi",
    "UnitType",
]
