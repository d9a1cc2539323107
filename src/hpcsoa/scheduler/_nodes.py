"""``client.nodes``: node and node-group operations (spec §6.4–§6.7)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..protocol import Operation
from ..protocol._catalog import NodeState
from ..protocol._datacontract import (
    decode_object_array,
    decode_property_array,
    decode_string_array,
)
from ._common import filter_query, list_pager, properties_query
from ._models import Node, NodeGroup

if TYPE_CHECKING:
    from .._paging import AsyncPager
    from ..transport._requester import Requester

__all__ = ["NodesApi"]


class NodesApi:
    """Read the cluster's nodes and node groups (``client.nodes``).

    These operations always need an ``api-version`` (the client's configured one is sent).
    Errors: :class:`~hpcsoa.NotFound` for an unknown node or group.
    """

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def __repr__(self) -> str:
        return f"<NodesApi {self._requester.authority}>"

    async def get(self, name: str) -> Node:
        """Get Node (§6.4): every property of node ``name``."""
        resp = await self._requester.call(
            Operation.GET_NODE, path_params={"node": name}, accept="application/xml"
        )
        return Node.from_properties(decode_property_array(resp.body))

    def list(
        self,
        *,
        state: NodeState | str | Iterable[NodeState | str] | None = None,
        properties: Sequence[str] | str | None = None,
        page_size: int | None = None,
        sort_by: str | None = None,
    ) -> AsyncPager[Node]:
        """Get Node List (§6.5) as a pager.

        Args:
            state: only nodes in this state (``$filter=NodeState eq ...``).
            properties: properties to return (default: all).
            page_size: ``RowsPerRead``; sort_by: ``SortNodesBy`` (unknown → by id).
        """
        query = properties_query(properties)
        return list_pager(
            self._requester,
            Operation.LIST_NODES,
            path_params=None,
            query=query,
            filt=filter_query("NodeState", NodeState, state, None),
            sort=("SortNodesBy", sort_by),
            page_size=page_size,
            build=Node.from_properties,
        )

    async def groups(self) -> builtins.list[NodeGroup]:
        """Get Node Group List (§6.6)."""
        resp = await self._requester.call(Operation.LIST_NODE_GROUPS, accept="application/xml")
        out: builtins.list[NodeGroup] = []
        for props in decode_object_array(resp.body):
            fields = {k.lower(): v for k, v in props}
            out.append(NodeGroup(fields.get("name") or "", fields.get("description")))
        return out

    async def group_members(self, name: str) -> builtins.list[str]:
        """Get Node Group Members (§6.7): the node names of group ``name``."""
        resp = await self._requester.call(
            Operation.GET_NODE_GROUP_MEMBERS, path_params={"group": name}, accept="application/xml"
        )
        return decode_string_array(resp.body)
