"""The Appendix A catalogs and the property value codec (protocol/_catalog.py)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcsoa.protocol._catalog import (
    JOB_LIST_DEFAULT_PROPERTIES,
    JOB_PROPERTIES,
    NODE_PROPERTIES,
    TASK_LIST_DEFAULT_PROPERTIES,
    TASK_PROPERTIES,
    JobPriority,
    JobState,
    JobType,
    NodeState,
    TaskState,
    TaskType,
    UnitType,
    ValueType,
    parse_value,
    render_value,
    select,
    to_wire,
)

# --- enums (§A.4) -------------------------------------------------------------------------------


def test_job_state_names_and_flag_numbers() -> None:
    expected = {
        "Configuring": 0x1,
        "Submitted": 0x2,
        "Validating": 0x4,
        "ExternalValidation": 0x8,
        "Queued": 0x10,
        "Running": 0x20,
        "Finishing": 0x40,
        "Finished": 0x80,
        "Failed": 0x100,
        "Canceled": 0x200,
        "Canceling": 0x400,
    }
    assert {s.wire_name: int(s) for s in JobState} == expected


def test_task_state_names_and_numbers() -> None:
    assert [s.wire_name for s in TaskState] == [
        "Configuring",
        "Submitted",
        "Validating",
        "Queued",
        "Dispatching",
        "Running",
        "Finishing",
        "Finished",
        "Failed",
        "Canceled",
        "Canceling",
    ]
    assert int(TaskState.QUEUED) == 0x8
    assert int(TaskState.DISPATCHING) == 0x10


def test_other_enums() -> None:
    assert {s.wire_name: int(s) for s in NodeState} == {"Offline": 1, "Draining": 2, "Online": 4}
    assert [p.wire_name for p in JobPriority] == [
        "Lowest",
        "BelowNormal",
        "Normal",
        "AboveNormal",
        "Highest",
    ]
    assert int(JobPriority.LOWEST) == 0  # confirmed by the C# sample
    assert int(UnitType.NODE) == 2  # confirmed by the C# sample
    assert UnitType.GPU.wire_name == "GPU"
    assert [t.wire_name for t in JobType] == ["Batch", "Admin", "Service", "Broker"]
    assert TaskType.PARAMETRIC_SWEEP.wire_name == "ParametricSweep"
    assert str(TaskType.BASIC) == "Basic"


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("Running", JobState.RUNNING),
        ("running", JobState.RUNNING),
        (" RUNNING ", JobState.RUNNING),
        ("32", JobState.RUNNING),
        ("ExternalValidation", JobState.EXTERNAL_VALIDATION),
        ("external_validation", JobState.EXTERNAL_VALIDATION),
    ],
)
def test_enum_parse_by_name_any_case_or_number(text: str, member: JobState) -> None:
    assert JobState.parse(text) is member


@pytest.mark.parametrize("text", ["", "Runnin", "3", "0x20", "All", "-1"])
def test_enum_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="JobState"):
        JobState.parse(text)


def test_terminal_states() -> None:
    assert {s for s in JobState if s.is_terminal()} == {
        JobState.FINISHED,
        JobState.FAILED,
        JobState.CANCELED,
    }
    assert {s for s in TaskState if s.is_terminal()} == {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.CANCELED,
    }


# --- catalogs (§A.1–§A.3) -----------------------------------------------------------------------


def test_job_catalog_columns() -> None:
    spec = JOB_PROPERTIES.lookup("Name")
    assert spec is not None
    assert (spec.get, spec.create, spec.submit, spec.set) == (True, True, True, True)
    state = JOB_PROPERTIES.lookup("State")
    assert state is not None
    assert (state.get, state.settable) == (True, False)
    hold = JOB_PROPERTIES.lookup("HoldUntil")
    assert hold is not None
    assert (hold.create, hold.submit, hold.set) == (False, True, True)
    child = JOB_PROPERTIES.lookup("ChildJobIds")
    assert child is not None
    assert (child.create, child.submit, child.set) == (True, True, False)
    password = JOB_PROPERTIES.lookup("Password")
    assert password is not None
    assert (password.get, password.create, password.submit, password.set) == (
        False,
        True,
        True,
        True,
    )
    assert "Password" not in JOB_PROPERTIES.gettable
    assert len(JOB_PROPERTIES) == 63  # the rows of §A.1


def test_task_and_node_catalogs() -> None:
    assert len(TASK_PROPERTIES) == 44
    assert len(NODE_PROPERTIES) == 18
    for name in TASK_LIST_DEFAULT_PROPERTIES:
        assert name in TASK_PROPERTIES
    for name in JOB_LIST_DEFAULT_PROPERTIES:
        assert name in JOB_PROPERTIES
    cmd = TASK_PROPERTIES.lookup("CommandLine")
    assert cmd is not None
    assert (cmd.create, cmd.set) == (True, True)
    out = TASK_PROPERTIES.lookup("Output")
    assert out is not None
    assert out.settable is False
    assert all(s.get and not s.settable for s in NODE_PROPERTIES)


@pytest.mark.parametrize(
    "name", ["MinCoresPerNode", "mincorespernode", "MINCORESPERNODE", "min_cores_per_node"]
)
def test_lookup_is_case_insensitive_and_takes_snake_case(name: str) -> None:
    assert JOB_PROPERTIES.canonical(name) == "MinCoresPerNode"


def test_lookup_unknown() -> None:
    assert JOB_PROPERTIES.lookup("NoSuchThing") is None
    assert JOB_PROPERTIES.canonical("") is None
    assert "Commandline" in TASK_PROPERTIES  # the Python sample's spelling (§2.6)
    assert 42 not in TASK_PROPERTIES


def test_snake_names() -> None:
    spec = TASK_PROPERTIES.lookup("StdOutFilePath")
    assert spec is not None
    assert spec.snake_name == "std_out_file_path"


def test_select_canonical_order_kept_and_deduplicated() -> None:
    assert select(JOB_PROPERTIES, ["state", "ID", "name", "Id"]) == ["State", "Id", "Name"]
    with pytest.raises(ValueError, match="'Bogus' is not a valid job property"):
        select(JOB_PROPERTIES, ["Id", "Bogus"])
    with pytest.raises(ValueError, match="Password"):
        select(JOB_PROPERTIES, ["Password"])  # write-only


# --- value codec ---------------------------------------------------------------------------------


def _spec(catalog: object, name: str):  # type: ignore[no-untyped-def]
    spec = catalog.lookup(name)  # type: ignore[attr-defined]
    assert spec is not None
    return spec


def test_parse_each_type() -> None:
    assert parse_value(_spec(JOB_PROPERTIES, "MinCores"), "4") == 4
    assert parse_value(_spec(JOB_PROPERTIES, "IsExclusive"), "True") is True
    assert parse_value(_spec(JOB_PROPERTIES, "IsExclusive"), "false") is False
    assert parse_value(_spec(JOB_PROPERTIES, "Priority"), "0") is JobPriority.LOWEST
    assert parse_value(_spec(JOB_PROPERTIES, "UnitType"), "2") is UnitType.NODE
    assert parse_value(_spec(JOB_PROPERTIES, "CreateTime"), "9/27/2011 9:53:26 PM") == datetime(
        2011, 9, 27, 21, 53, 26
    )
    assert parse_value(_spec(JOB_PROPERTIES, "NodeGroups"), "A, B,,C") == ["A", "B", "C"]
    assert parse_value(_spec(JOB_PROPERTIES, "ParentJobIds"), "3,4") == [3, 4]
    assert parse_value(_spec(JOB_PROPERTIES, "Name"), "") == ""
    assert parse_value(_spec(JOB_PROPERTIES, "MinCores"), "") is None  # <Value/>
    assert parse_value(_spec(JOB_PROPERTIES, "MinCores"), None) is None  # i:nil
    assert parse_value(_spec(JOB_PROPERTIES, "NodeGroups"), "") == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("MinCores", "four"),
        ("MinCores", "1.5"),
        ("IsExclusive", "1"),
        ("IsExclusive", "yes"),
        ("Priority", "Urgent"),
        ("CreateTime", "yesterday"),
        ("ParentJobIds", "1,x"),
    ],
)
def test_parse_rejects_bad_values(name: str, text: str) -> None:
    with pytest.raises(ValueError, match=r"not|invalid|expected"):
        parse_value(_spec(JOB_PROPERTIES, name), text)


def test_render_like_dotnet() -> None:
    assert render_value(_spec(JOB_PROPERTIES, "IsExclusive"), True) == "True"
    assert render_value(_spec(JOB_PROPERTIES, "State"), JobState.CANCELED) == "Canceled"
    assert render_value(_spec(JOB_PROPERTIES, "CreateTime"), datetime(2024, 3, 5, 14, 7, 9)) == (
        "3/5/2024 2:07:09 PM"
    )
    assert render_value(_spec(JOB_PROPERTIES, "NodeGroups"), ["A", "B"]) == "A,B"
    assert render_value(_spec(JOB_PROPERTIES, "Name"), None) is None
    with pytest.raises(ValueError, match="cannot render"):
        render_value(_spec(JOB_PROPERTIES, "MinCores"), "3")


def test_to_wire_accepts_python_values_and_normalises_strings() -> None:
    assert to_wire(_spec(JOB_PROPERTIES, "Priority"), JobPriority.HIGHEST) == "Highest"
    assert to_wire(_spec(JOB_PROPERTIES, "Priority"), 0) == "Lowest"
    assert to_wire(_spec(JOB_PROPERTIES, "Priority"), "abovenormal") == "AboveNormal"
    assert to_wire(_spec(JOB_PROPERTIES, "RunUntilCanceled"), "true") == "True"
    assert to_wire(_spec(JOB_PROPERTIES, "MinCores"), 3) == "3"
    assert to_wire(_spec(JOB_PROPERTIES, "NodeGroups"), ("A", "B")) == "A,B"
    assert to_wire(_spec(JOB_PROPERTIES, "ParentJobIds"), [1, "2"]) == "1,2"
    assert to_wire(_spec(JOB_PROPERTIES, "Name"), "  x  ") == "  x  "
    assert to_wire(_spec(JOB_PROPERTIES, "HoldUntil"), datetime(2030, 1, 2, 3, 4, 5)) == (
        "1/2/2030 3:04:05 AM"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MinCores", True),
        ("MinCores", "x"),
        ("RunUntilCanceled", 1),
        ("Priority", 9),
        ("NodeGroups", ["a,b"]),
        ("CreateTime", 5),
    ],
)
def test_to_wire_rejects_with_the_property_name(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"invalid value for {name}"):
        to_wire(_spec(JOB_PROPERTIES, name), value)


_TYPED_VALUES = {
    ValueType.INT: st.integers(-(2**31), 2**31 - 1),
    ValueType.BOOL: st.booleans(),
    ValueType.DATETIME: st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)
    ).map(lambda d: d.replace(microsecond=0)),
    ValueType.STRING: st.text(),
    ValueType.STRING_LIST: st.lists(
        st.text(alphabet=st.characters(blacklist_characters=","), min_size=1).filter(
            lambda s: s.strip() == s and s != ""
        ),
        max_size=4,
    ),
    ValueType.INT_LIST: st.lists(st.integers(0, 10**6), max_size=4),
}


@given(data=st.data())
def test_render_parse_round_trip_for_every_property(data: st.DataObject) -> None:
    catalog = data.draw(st.sampled_from([JOB_PROPERTIES, TASK_PROPERTIES, NODE_PROPERTIES]))
    spec = data.draw(st.sampled_from(list(catalog)))
    if spec.value_type is ValueType.ENUM:
        assert spec.enum_type is not None
        value: object = data.draw(st.sampled_from(list(spec.enum_type)))
    else:
        value = data.draw(_TYPED_VALUES[spec.value_type])
    text = render_value(spec, value)
    assert text is not None
    if spec.value_type is not ValueType.STRING and text == "":
        return  # an empty list renders as "", read back as []
    assert parse_value(spec, text) == value
