"""Operation table: both URI forms, case-insensitive matching, api-version (§1.1, §2.1–§2.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcsoa._exceptions import EncodeError
from hpcsoa.protocol._models import HttpRequest
from hpcsoa.protocol._routes import (
    DEFAULT_API_VERSION,
    ROUTES,
    ApiVersion,
    Operation,
    UriForm,
    build_request,
    match_route,
    parse_bool,
    query_lookup,
    resolve_api_version,
    route_for,
)

PARAMS = {
    "session_id": "7",
    "batch": "b1",
    "job_id": "12",
    "task_id": "3",
    "subtask_id": "2",
    "service": "CcpEchoSvc",
    "node": "CN01",
    "group": "ComputeNodes",
}

# Written out from spec §1.1 (2016 form, after /WindowsHPC), independently of the route table.
EXPECTED: dict[Operation, tuple[str, str, bool]] = {
    Operation.CREATE_SESSION: ("POST", "/Sessions/Create", True),
    Operation.ATTACH_SESSION: ("GET", "/Session/7/Attach", True),
    Operation.CLOSE_SESSION: ("POST", "/Session/7/Close", True),
    Operation.SEND_REQUESTS: ("POST", "/Session/7/batch/b1", True),
    Operation.COMMIT: ("POST", "/Session/7/batch/b1/Commit", True),
    Operation.GET_RESPONSES: ("POST", "/Session/7/batch/b1/Response", True),
    Operation.GET_BATCH_STATUS: ("GET", "/Session/7/batch/b1/Status", True),
    Operation.PURGE: ("POST", "/Session/7/batch/b1/Purge", True),
    Operation.GET_SERVICE_VERSIONS: ("GET", "/SoaService/CcpEchoSvc/Versions", True),
    Operation.GET_CLUSTERS: ("GET", "/Clusters", True),
    Operation.GET_VERSION: ("GET", "/Version", False),
    Operation.GET_ACTIVE_HEAD_NODE: ("GET", "/ActiveHeadnode", True),
    Operation.GET_NODE: ("GET", "/Node/CN01", True),
    Operation.LIST_NODES: ("GET", "/Nodes", True),
    Operation.LIST_NODE_GROUPS: ("GET", "/NodeGroups", True),
    Operation.GET_NODE_GROUP_MEMBERS: ("GET", "/NodeGroup/ComputeNodes", True),
    Operation.LIST_JOB_TEMPLATES: ("GET", "/JobTemplates", False),
    Operation.CREATE_JOB: ("POST", "/Jobs", False),
    Operation.CREATE_JOB_FROM_XML: ("POST", "/Jobs/JobFile", False),
    Operation.LIST_JOBS: ("GET", "/Jobs", False),
    Operation.GET_JOB: ("GET", "/Job/12", False),
    Operation.SET_JOB_PROPERTIES: ("PUT", "/Job/12", False),
    Operation.SUBMIT_JOB: ("POST", "/Job/12/Submit", False),
    Operation.CANCEL_JOB: ("POST", "/Job/12/Cancel", False),
    Operation.REQUEUE_JOB: ("POST", "/Job/12/Requeue", False),
    Operation.GET_JOB_CUSTOM_PROPERTIES: ("GET", "/Job/12/CustomProperties", False),
    Operation.SET_JOB_CUSTOM_PROPERTIES: ("POST", "/Job/12/CustomProperties", False),
    Operation.GET_JOB_ENV: ("GET", "/Job/12/EnvVariables", False),
    Operation.SET_JOB_ENV: ("POST", "/Job/12/EnvVariables", False),
    Operation.ADD_TASK: ("POST", "/Job/12/Tasks", False),
    Operation.LIST_TASKS: ("GET", "/Job/12/Tasks", False),
    Operation.GET_TASK: ("GET", "/Job/12/Task/3", False),
    Operation.SET_TASK_PROPERTIES: ("PUT", "/Job/12/Task/3", False),
    Operation.CANCEL_TASK: ("POST", "/Job/12/Task/3/Cancel", False),
    Operation.REQUEUE_TASK: ("POST", "/Job/12/Task/3/Requeue", False),
    Operation.GET_TASK_CUSTOM_PROPERTIES: ("GET", "/Job/12/Task/3/CustomProperties", False),
    Operation.SET_TASK_CUSTOM_PROPERTIES: ("POST", "/Job/12/Task/3/CustomProperties", False),
    Operation.GET_TASK_ENV: ("GET", "/Job/12/Task/3/EnvVariables", False),
    Operation.SET_TASK_ENV: ("POST", "/Job/12/Task/3/EnvVariables", False),
    Operation.GET_SUBTASK: ("GET", "/Job/12/Task/3/SubTask/2", False),
    Operation.SET_SUBTASK_PROPERTIES: ("PUT", "/Job/12/Task/3/SubTask/2", False),
    Operation.CANCEL_SUBTASK: ("POST", "/Job/12/Task/3/SubTask/2/Cancel", False),
    Operation.REQUEUE_SUBTASK: ("POST", "/Job/12/Task/3/SubTask/2/Requeue", False),
}


def _params(op: Operation) -> dict[str, str | int]:
    return {name: PARAMS[name] for name in route_for(op).params}


def test_every_operation_is_listed() -> None:
    assert set(EXPECTED) == set(Operation)
    assert {r.operation for r in ROUTES} == set(Operation)
    assert len(ROUTES) == len(Operation)


@pytest.mark.parametrize("op", list(Operation))
def test_build_and_match_2016_form(op: Operation) -> None:
    method, tail, av_required = EXPECTED[op]
    req = build_request(op, cluster=None, path_params=_params(op))
    assert (req.method, req.path, req.operation) == (method, "/WindowsHPC" + tail, op.value)
    assert ("api-version", DEFAULT_API_VERSION) in req.headers
    assert route_for(op).api_version_required is av_required
    m = match_route(method, req.path)
    assert m is not None
    assert m.route is not None
    assert m.route.operation is op
    assert m.form is UriForm.HPC2016
    assert m.cluster is None
    assert dict(m.params) == {k: str(v) for k, v in _params(op).items()}


@pytest.mark.parametrize("op", list(Operation))
def test_build_and_match_pre_2016_form(op: Operation) -> None:
    method, tail, _ = EXPECTED[op]
    req = build_request(op, cluster="HPCLAB", path_params=_params(op))
    if op is Operation.GET_CLUSTERS:  # never has a cluster segment (§6.1)
        assert req.path == "/WindowsHPC/Clusters"
        return
    assert req.path == "/WindowsHPC/HPCLAB" + tail
    m = match_route(method, req.path)
    assert m is not None
    assert m.route is not None
    assert m.route.operation is op
    assert m.form is UriForm.PRE_2016
    assert m.cluster == "HPCLAB"
    assert dict(m.params) == {k: str(v) for k, v in _params(op).items()}


def test_spec_example_paths() -> None:
    # §4.10 (pre-2016) as the Java/C samples write them: lower-case literals.
    cases = [
        ("GET", "/WindowsHPC/Clusters", Operation.GET_CLUSTERS, None),
        ("POST", "/WindowsHPC/HPCLAB/sessions/Create", Operation.CREATE_SESSION, "HPCLAB"),
        ("POST", "/WindowsHPC/HPCLAB/session/7/batch/b1", Operation.SEND_REQUESTS, "HPCLAB"),
        (
            "POST",
            "/WindowsHPC/HPCLAB/session/7/batch/b1/Response",
            Operation.GET_RESPONSES,
            "HPCLAB",
        ),
        (
            "GET",
            "/WindowsHPC/HPCLAB/session/7/batch/b1/Status",
            Operation.GET_BATCH_STATUS,
            "HPCLAB",
        ),
        ("POST", "/WindowsHpc/HPCLAB/session/7/batch/b1/Purge", Operation.PURGE, "HPCLAB"),
        ("POST", "/WindowsHPC/HPCLAB/session/7/Close", Operation.CLOSE_SESSION, "HPCLAB"),
        ("GET", "/WindowsHPC/HPCLAB/Nodegroups", Operation.LIST_NODE_GROUPS, "HPCLAB"),
        ("GET", "/WindowsHPC/Nodegroup/GPU", Operation.GET_NODE_GROUP_MEMBERS, None),
    ]
    for method, path, op, cluster in cases:
        m = match_route(method, path)
        assert m is not None, path
        assert m.route is not None, path
        assert (m.route.operation, m.cluster) == (op, cluster), path


@pytest.mark.parametrize("transform", [str.lower, str.upper, str.swapcase])
@pytest.mark.parametrize("form_cluster", [None, "HpcLab"])
def test_literals_match_case_insensitively_values_keep_case(
    transform: object, form_cluster: str | None
) -> None:
    values = {"session_id": "7", "batch": "MiXeD"}
    req = build_request(Operation.GET_BATCH_STATUS, cluster=form_cluster, path_params=values)
    parts = req.path.split("/")
    # Change the case of every literal segment, but not the values or the cluster name.
    keep = {"7", "MiXeD", "HpcLab"}
    path = "/".join(p if p in keep else transform(p) for p in parts)  # type: ignore[operator]
    m = match_route("get", path)
    assert m is not None
    assert m.route is not None
    assert m.route.operation is Operation.GET_BATCH_STATUS
    assert m.params == values
    assert m.cluster == form_cluster


@pytest.mark.parametrize(
    "literal",
    [
        "Clusters",
        "Jobs",
        "Job",
        "Nodes",
        "Node",
        "NodeGroups",
        "NodeGroup",
        "JobTemplates",
        "Version",
        "ActiveHeadnode",
        "Sessions",
        "Session",
        "SoaService",
    ],
)
def test_2016_literal_rule(literal: str) -> None:
    for spelled in (literal, literal.lower(), literal.upper()):
        m = match_route("GET", f"/WindowsHPC/{spelled}/x/y/z")
        assert m is not None
        assert m.form is UriForm.HPC2016
        assert m.cluster is None


def test_other_first_segment_is_a_cluster() -> None:
    m = match_route("GET", "/WindowsHPC/Contoso/Jobs")
    assert m is not None
    assert m.route is not None
    assert (m.form, m.cluster, m.route.operation) == (
        UriForm.PRE_2016,
        "Contoso",
        Operation.LIST_JOBS,
    )
    # A percent-encoded cluster name is decoded.
    m = match_route("GET", "/WindowsHPC/My%20Lab/Version")
    assert m is not None
    assert m.cluster == "My Lab"


def test_clusters_under_a_cluster_is_unknown() -> None:
    m = match_route("GET", "/WindowsHPC/HPCLAB/Clusters")
    assert m is not None
    assert m.route is None
    assert m.allowed_methods == ()


def test_unknown_path_and_wrong_method() -> None:
    m = match_route("GET", "/WindowsHPC/Jobs/Nope/Extra/Segments")
    assert m is not None
    assert m.route is None
    assert m.allowed_methods == ()
    m = match_route("DELETE", "/WindowsHPC/HPCLAB/Job/12")
    assert m is not None
    assert m.route is None
    assert m.allowed_methods == ("GET", "PUT")  # -> 405 with Allow
    m = match_route("GET", "/WindowsHPC/Sessions/Create")
    assert m is not None
    assert m.route is None
    assert m.allowed_methods == ("POST",)


@pytest.mark.parametrize(
    "path",
    ["/", "", "/hpc/Jobs", "/WindowsHPC", "/WindowsHPC/", "WindowsHPC/Jobs", "/WindowsHPCX/Jobs"],
)
def test_not_under_root(path: str) -> None:
    assert match_route("GET", path) is None


def test_trailing_slash_tolerated() -> None:
    m = match_route("GET", "/WindowsHPC/HPCLAB/Jobs/")
    assert m is not None
    assert m.route is not None
    assert m.route.operation is Operation.LIST_JOBS


def test_empty_path_value_does_not_match() -> None:
    m = match_route("GET", "/WindowsHPC/Job//Tasks")
    assert m is not None
    assert m.route is None


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("batch one", "batch%20one"),
        ("a/b", "a%2Fb"),
        ("{x}", "%7Bx%7D"),
        ("naïve", "na%C3%AFve"),
        ("100%", "100%25"),
        ("a?b#c", "a%3Fb%23c"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a.b-c_d~e", "a.b-c_d~e"),
    ],
)
def test_path_values_are_percent_encoded_and_decoded(value: str, encoded: str) -> None:
    req = build_request(
        Operation.GET_BATCH_STATUS, cluster="HPC LAB", path_params={"session_id": 7, "batch": value}
    )
    assert req.path == f"/WindowsHPC/HPC%20LAB/Session/7/batch/{encoded}/Status"
    m = match_route("GET", req.path)
    assert m is not None
    assert m.route is not None
    assert m.params == {"session_id": "7", "batch": value}
    assert m.cluster == "HPC LAB"


@given(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_any_path_value_round_trips(value: str) -> None:
    req = build_request(Operation.GET_NODE, cluster=None, path_params={"node": value})
    assert "/" not in req.path[len("/WindowsHPC/Node/") :]
    m = match_route("GET", req.path)
    assert m is not None
    assert m.route is not None
    assert m.route.operation is Operation.GET_NODE
    assert m.params["node"] == value


def test_lone_surrogates_raise_encode_error() -> None:
    with pytest.raises(EncodeError, match="not encodable"):
        build_request(Operation.GET_NODE, cluster=None, path_params={"node": "a\ud800"})
    with pytest.raises(EncodeError, match="not encodable"):
        build_request(Operation.GET_NODE, cluster="c\udfff", path_params={"node": "a"})
    with pytest.raises(EncodeError, match="query parameter 'Properties' is not encodable"):
        build_request(Operation.LIST_NODES, cluster=None, query=[("Properties", "\ud800")])


def test_build_errors() -> None:
    with pytest.raises(EncodeError, match="missing path value 'batch'"):
        build_request(Operation.COMMIT, cluster=None, path_params={"session_id": 1})
    with pytest.raises(EncodeError, match="unexpected path values"):
        build_request(Operation.LIST_JOBS, cluster=None, path_params={"job_id": 1})
    with pytest.raises(EncodeError, match="requires an api-version"):
        build_request(Operation.CREATE_SESSION, cluster=None, api_version=None)
    req = build_request(Operation.LIST_JOBS, cluster=None, api_version=None)
    assert all(k.lower() != "api-version" for k, _ in req.headers)


def test_build_query_headers_and_target() -> None:
    req = build_request(
        Operation.LIST_NODES,
        cluster="HPCLAB",
        query=[("$filter", "NodeState eq draining"), ("Render", "RestPropRender")],
        api_version="2012-11-01",
        api_version_in_query=True,
        accept="application/xml",
        extra_headers=[("X-Trace", "1")],
    )
    assert req.query == (
        ("$filter", "NodeState eq draining"),
        ("Render", "RestPropRender"),
        ("api-version", "2012-11-01"),
    )
    assert req.headers == (("Accept", "application/xml"), ("X-Trace", "1"))
    assert req.target == (
        "/WindowsHPC/HPCLAB/Nodes?$filter=NodeState%20eq%20draining&Render=RestPropRender"
        "&api-version=2012-11-01"
    )
    body_req = build_request(
        Operation.CREATE_SESSION,
        cluster=None,
        query=[("durable", "false")],
        body=b"{}",
        content_type="application/json; charset=utf-8",
    )
    assert body_req.body == b"{}"
    assert ("Content-Type", "application/json; charset=utf-8") in body_req.headers
    assert body_req.target == "/WindowsHPC/Sessions/Create?durable=false"
    assert HttpRequest("GET", "/x").target == "/x"


# --- api-version (§2.3) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date", "suffix"),
    [
        ("2011-11-01", "2011-11-01", ""),
        ("2012-03-31.3.4", "2012-03-31", "3.4"),
        ("2012-11-01.4.0", "2012-11-01", "4.0"),
        (" 2016-11-01.5.0 ", "2016-11-01", "5.0"),
    ],
)
def test_api_version_parse(text: str, date: str, suffix: str) -> None:
    v = ApiVersion.parse(text)
    assert (v.date, v.suffix) == (date, suffix)
    assert str(v) == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2011-11",
        "11-11-2011",
        "2011-13-01",
        "2011-02-30",
        "2011-11-01.",
        "2011-11-01.x",
        "２０１１-11-01",
        "2011-11-01 extra",
        "latest",
    ],
)
def test_api_version_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid api-version"):
        ApiVersion.parse(text)


def test_api_version_compare() -> None:
    sp3, sp4, v2012 = (
        ApiVersion.parse(s) for s in ("2011-11-01", "2012-03-31.3.4", "2012-11-01.4.0")
    )
    assert sp3 < sp4 < v2012
    assert sorted([v2012, sp3, sp4]) == [sp3, sp4, v2012]
    # Minimum checks compare the date part only: plain 2012-03-31 satisfies "≥ 2012-03-31.3.4".
    assert ApiVersion.parse("2012-03-31").at_least(
        route_for(Operation.GET_ACTIVE_HEAD_NODE).min_version or ""
    )
    assert not sp3.at_least("2012-03-31")
    assert v2012.at_least("2012-11-01")
    # Suffixes compare numerically, not as text.
    assert ApiVersion.parse("2012-11-01.10") > ApiVersion.parse("2012-11-01.9")
    assert ApiVersion.parse("2012-11-01") < ApiVersion.parse("2012-11-01.0")
    assert ApiVersion.parse("2012-11-01.4.0") == ApiVersion("2012-11-01", "4.0")


def test_api_version_header_wins_over_query() -> None:
    assert resolve_api_version({"api-version": "2011-11-01"}, [("api-version", "2012-11-01")]) == (
        "2011-11-01"
    )
    assert resolve_api_version({"API-Version": "h"}, [("Api-Version", "q")]) == "h"
    assert resolve_api_version({}, [("a", "1"), ("API-VERSION", "q")]) == "q"
    assert resolve_api_version({"Accept": "x"}, []) is None


def test_query_lookup_and_parse_bool() -> None:
    q = [("Durable", "True"), ("durable", "false"), ("QueryId", "t")]
    assert query_lookup(q, "durable") == "True"  # first one, name case-insensitive
    assert query_lookup(q, "queryid") == "t"
    assert query_lookup(q, "missing") is None
    assert parse_bool("True") is True
    assert parse_bool("false") is False
    assert parse_bool(" TRUE ") is True
    for bad in ("", "1", "yes"):
        with pytest.raises(ValueError, match="not a boolean"):
            parse_bool(bad)
