"""Deterministic fault injection for the emulator: the fault plan.

A plan is a list of rules. For each request the first rule that matches *and fires* decides
what goes wrong; other requests are served normally. Everything is deterministic for a given
plan, seed and request order (probabilities draw from ``random.Random(seed)``).

JSON format (``hpcsoa serve --fault-plan FILE``, ``PUT /hpcsoa-admin/fault-plan``)::

    {
      "seed": 0,
      "rules": [
        {"operation": "send_requests", "nth": 2, "times": 1,
         "status": 503, "headers": {"Retry-After": "1"}},
        {"method": "POST", "path": "/Response", "truncate_after": 300},
        {"operation": "get_responses", "duplicate": 2},
        {"path": "(?i)/batch/b1$", "abort": "after", "probability": 0.5, "times": 3},
        {"operation": "create_session", "delay_ms": 250}
      ]
    }

Matching (all given matchers must hold):

* ``method``: HTTP method, case-insensitive.
* ``path``: regular expression searched (case-insensitively) in the raw request target
  (path and query, as sent).
* ``operation``: an operation name of ``hpcsoa.protocol.Operation`` (``send_requests``,
  ``get_responses``, ``create_session``, ``list_jobs``...).
* ``nth``: the rule can fire from the nth matching call on (1-based, default 1).
* ``probability``: chance that an eligible call fires (default 1).
* ``times``: fire at most this many times (default unlimited).

Actions (combine freely; ``delay_ms`` runs first):

* ``delay_ms``: wait before handling the request.
* ``status`` (+ ``headers``, optional ``body``): answer with this status without running the
  handler (e.g. 503 + ``Retry-After``). The body defaults to an ``HpcWebServiceFault`` with
  code ``UnknownError``; with ``body`` given it is sent as ``text/plain``.
* ``abort``: ``"before"`` drops the connection without running the handler; ``"after"`` runs
  the handler (its state change happens) and then drops the connection without a response.
* ``truncate_after``: send only the first N bytes of the response body, then drop the
  connection.
* ``garble``: corrupt the body; for a Get Responses stream, the Nth envelope / record
  (end marker included; 1-based) so that it no longer parses.
* ``duplicate``: write the Nth envelope / record of a Get Responses stream twice.

The admin route ``/hpcsoa-admin/fault-plan`` (loopback peers only) accepts ``GET`` (current
plan and per-rule counters), ``PUT`` (replace, body as above) and ``DELETE`` (remove).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from ..protocol import Operation

__all__ = ["FaultDecision", "FaultPlan", "FaultPlanRunner", "FaultRule", "garble_bytes"]

_OPERATIONS: Final = {op.value: op for op in Operation}
_RULE_KEYS: Final = frozenset(
    {
        "method",
        "path",
        "operation",
        "nth",
        "probability",
        "times",
        "status",
        "headers",
        "body",
        "delay_ms",
        "abort",
        "truncate_after",
        "garble",
        "duplicate",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """One rule of a :class:`FaultPlan` (fields as in the module's JSON format).

    Raises:
        ValueError: a field is out of range or the rule has no action.
    """

    method: str | None = None
    path: str | None = None
    operation: str | None = None
    nth: int = 1
    probability: float = 1.0
    times: int | None = None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: str | None = None
    delay_ms: float = 0.0
    abort: Literal["before", "after"] | None = None
    truncate_after: int | None = None
    garble: int | None = None
    duplicate: int | None = None
    _path_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.operation is not None:
            op = _OPERATIONS.get(self.operation.lower())
            if op is None:
                raise ValueError(f"unknown operation {self.operation!r}")
            object.__setattr__(self, "operation", op.value)
        if self.path is not None:
            try:
                object.__setattr__(self, "_path_re", re.compile(self.path, re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"invalid path regex {self.path!r}: {exc}") from None
        if self.nth < 1:
            raise ValueError("nth must be >= 1")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be in [0, 1]")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status out of range: {self.status}")
        if self.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if self.abort not in (None, "before", "after"):
            raise ValueError("abort must be 'before' or 'after'")
        for name in ("truncate_after", "garble", "duplicate"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "truncate_after" else 1):
                raise ValueError(f"{name} out of range: {value}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        if not self.has_action:
            raise ValueError("a fault rule needs an action (status, delay_ms, abort, ...)")

    @property
    def has_action(self) -> bool:
        return (
            self.status is not None
            or self.delay_ms > 0
            or self.abort is not None
            or self.truncate_after is not None
            or self.garble is not None
            or self.duplicate is not None
        )

    @property
    def acts_on_output(self) -> bool:
        """The rule changes what the handler writes (abort after / truncate / garble / dup)."""
        return (
            self.abort == "after"
            or self.truncate_after is not None
            or self.garble is not None
            or self.duplicate is not None
        )

    def matches(self, method: str, target: str, operation: str | None) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self._path_re is None or self._path_re.search(target) is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON object.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        kwargs = dict(data)
        headers = kwargs.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int) for k, v in headers.items()
        ):
            raise ValueError("headers must map names to strings")
        kwargs["headers"] = {k: str(v) for k, v in headers.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in sorted(_RULE_KEYS):
            value = getattr(self, name)
            default = _DEFAULTS[name]
            if name == "headers":
                value = dict(value)
            if value != default:
                out[name] = value
        return out


_DEFAULTS: Final[dict[str, Any]] = {
    "method": None,
    "path": None,
    "operation": None,
    "nth": 1,
    "probability": 1.0,
    "times": None,
    "status": None,
    "headers": {},
    "body": None,
    "delay_ms": 0.0,
    "abort": None,
    "truncate_after": None,
    "garble": None,
    "duplicate": None,
}


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """An ordered list of :class:`FaultRule` plus the seed of its probability draws."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> FaultPlan:
        """Parse the JSON format of the module docstring.

        Raises:
            ValueError: malformed JSON or an invalid rule (the message names the rule index).
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ValueError(f"fault plan is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError("a fault plan must be a JSON object with a 'rules' list")
        unknown = set(data) - {"rules", "seed"}
        if unknown:
            raise ValueError(f"unknown fault plan keys: {sorted(unknown)}")
        rules = data.get("rules", [])
        seed = data.get("seed", 0)
        if not isinstance(rules, list) or not isinstance(seed, int):
            raise ValueError("'rules' must be a list and 'seed' an integer")
        parsed = []
        for i, rule in enumerate(rules):
            try:
                parsed.append(FaultRule.from_json(rule))
            except ValueError as exc:
                raise ValueError(f"fault rule {i}: {exc}") from None
        return cls(tuple(parsed), seed)

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        """Read a plan from a JSON file.

        Raises:
            OSError: the file cannot be read.
            ValueError: as :meth:`from_json`.
        """
        return cls.from_json(Path(path).read_bytes())

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [r.to_json() for r in self.rules]}


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What the plan decided for one request."""

    index: int
    rule: FaultRule


class FaultPlanRunner:
    """A plan plus its live counters (calls matched and faults fired per rule)."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self.plan = plan
        self.seen = [0] * len(plan.rules) if plan else []
        self.fired = [0] * len(plan.rules) if plan else []
        self._rng = random.Random(plan.seed if plan else 0)

    def decide(self, method: str, target: str, operation: str | None) -> FaultDecision | None:
        """The decision for one request, or ``None`` (serve normally)."""
        plan = self.plan
        if plan is None:
            return None
        for i, rule in enumerate(plan.rules):
            if not rule.matches(method, target, operation):
                continue
            self.seen[i] += 1
            if self.seen[i] < rule.nth:
                continue
            if rule.times is not None and self.fired[i] >= rule.times:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self.fired[i] += 1
            return FaultDecision(i, rule)
        return None

    def snapshot(self) -> dict[str, Any]:
        if self.plan is None:
            return {"plan": None}
        return {"plan": self.plan.to_json(), "matched": list(self.seen), "fired": list(self.fired)}


def garble_bytes(data: bytes, *, generic: bool) -> bytes:
    """Corrupt one envelope / record / body so that it no longer parses.

    Generic records lose their field separators (wrong field count); XML and JSON get an
    unbalanced end tag in the middle.
    """
    if generic:
        return data.replace(b"\xef\xbf\xbf", b"#")
    mid = len(data) // 2
    return data[:mid] + b"</garbled>\x01" + data[mid:]
