"""``client.cluster``: cluster-level operations (spec §6.1–§6.3, §6.8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import Operation
from ..protocol._datacontract import decode_object_array, decode_string, decode_string_array
from ._common import version_at_least

if TYPE_CHECKING:
    from ..transport._requester import Requester

__all__ = ["ClusterApi"]

_HEAD_NODE_API_VERSION = "2012-03-31.3.4"  # Get Active Head Node needs SP4 (§6.3)


class ClusterApi:
    """Cluster name(s), service version, active head node and job templates."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def __repr__(self) -> str:
        return f"<ClusterApi {self._requester.authority}>"

    async def names(self) -> list[str]:
        """Get Clusters (§6.1): the cluster names this service knows (pre-2016 services).

        Raises:
            NotFound / BadRequest: an HPC Pack 2016 service, which has no Get Clusters.
        """
        resp = await self._requester.call(Operation.GET_CLUSTERS, accept="application/xml")
        names: list[str] = []
        for props in decode_object_array(resp.body):
            for key, value in props:
                if key.lower() == "name" and value:
                    names.append(value)
        return names

    async def version(self) -> str:
        """Get Version (§6.2): the HPC Pack version, e.g. ``"5.3.6420.0"``."""
        resp = await self._requester.call(Operation.GET_VERSION, accept="application/xml")
        return decode_string(resp.body)

    async def active_head_node(self) -> str:
        """Get Active Head Node (§6.3). Sends api-version 2012-03-31.3.4 if ours is older."""
        version = self._requester.api_version
        if not version_at_least(version, "2012-03-31"):
            version = _HEAD_NODE_API_VERSION
        resp = await self._requester.call(
            Operation.GET_ACTIVE_HEAD_NODE, accept="application/xml", api_version=version
        )
        return decode_string(resp.body)

    async def job_templates(self) -> list[str]:
        """Get Job Templates (§6.8); ``Default`` always exists."""
        resp = await self._requester.call(Operation.LIST_JOB_TEMPLATES, accept="application/xml")
        return decode_string_array(resp.body)
