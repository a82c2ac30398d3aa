"""What a prediction request must hold for a component, and its validation: every problem becomes a message
that names the field and the row, so the caller can fix the request (a 4xx, never a 5xx)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from contract import Component, Domain
from contract.component import ContractError

MAX_INSTANCES = 1000
MAX_STRING = 256


#: Validated request rows by column: ``{field: [value per row]}``, entity keys first. Columns, not a DataFrame:
#: the online lookup adds the feature columns and builds the one frame the model's ``prepare`` gets.
Columns = dict[str, list[Any]]


class BadRequest(ValueError):
    """The request is malformed; the message says how."""


@dataclass(frozen=True)
class RequestSchema:
    fields: dict[str, str]
    """Field name -> event type (``string``, ``long``, ``double``, ``boolean``): entity keys first."""
    domains: dict[str, Domain] = field(default_factory=dict)
    """The declared value domains of the fields that have one."""

    @classmethod
    def of(cls, component: Component) -> RequestSchema:
        events = component.streaming.events
        names = [*component.entity_keys(), *component.model.request_fields]
        columns: dict[str, str] = {}
        domains: dict[str, Domain] = {}
        for name in names:
            declared = events.field(name)
            if declared is None:  # the contract's validation refuses this; a schema must not guess a type
                raise ContractError(f"component {component.name!r}: request field {name!r} is not an event field")
            columns[name] = declared.type
            if declared.domain is not None:
                domains[name] = declared.domain
        return cls(columns, domains)

    def check_value(self, name: str, value: Any, where: str) -> Any:
        """The value, typed, when it has the field's type and lies in its domain; else ``BadRequest``."""
        typed = self._typed(name, value, where)
        domain = self.domains.get(name)
        violation = domain.violation(typed) if domain is not None else None
        if violation:
            raise BadRequest(f"{where}: {name} {violation}")
        return typed

    def _typed(self, name: str, value: Any, where: str) -> Any:
        kind = self.fields[name]
        if kind == "string":
            if not isinstance(value, str) or not value:
                raise BadRequest(f"{where}: {name} must be a non-empty string, got {value!r}")
            if len(value) > MAX_STRING:
                raise BadRequest(f"{where}: {name} is longer than {MAX_STRING} characters")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise BadRequest(f"{where}: {name} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: {name} must be a number, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"{where}: {name} must be a finite number, got {value}")
        if kind == "long":
            if isinstance(value, float) and not value.is_integer():
                raise BadRequest(f"{where}: {name} must be an integer, got {value}")
            return int(value)
        return float(value)

    def rows(self, instances: Any) -> Columns:
        """V1 ``instances``: a list of objects, one per prediction."""
        if not isinstance(instances, list) or not instances:
            raise BadRequest('the request must hold "instances": a non-empty list of objects')
        if len(instances) > MAX_INSTANCES:
            raise BadRequest(f"the request holds {len(instances)} instances; the limit is {MAX_INSTANCES}")
        columns: Columns = {name: [] for name in self.fields}
        for index, instance in enumerate(instances):
            where = f"instance {index}"
            if not isinstance(instance, dict):
                raise BadRequest(f"{where} must be an object with {', '.join(self.fields)}")
            missing = [name for name in self.fields if name not in instance]
            if missing:
                raise BadRequest(f"{where}: missing field {', '.join(missing)}")
            extra = sorted(set(instance) - set(self.fields))
            if extra:
                raise BadRequest(f"{where}: unknown field {', '.join(extra)} (expected {', '.join(self.fields)})")
            for name, column in columns.items():
                column.append(self.check_value(name, instance[name], where))
        return columns

    def columns(self, inputs: dict[str, list[Any]]) -> Columns:
        """V2 (Open Inference Protocol): one input tensor per field, all of the same length."""
        missing = [name for name in self.fields if name not in inputs]
        if missing:
            raise BadRequest(f"missing input {', '.join(missing)}")
        extra = sorted(set(inputs) - set(self.fields))
        if extra:
            raise BadRequest(f"unknown input {', '.join(extra)} (expected {', '.join(self.fields)})")
        lengths = {name: len(values) for name, values in inputs.items()}
        if len(set(lengths.values())) != 1:
            raise BadRequest(f"inputs differ in length: {lengths}")
        count = next(iter(lengths.values()))
        if count == 0 or count > MAX_INSTANCES:
            raise BadRequest(f"inputs hold {count} rows; between 1 and {MAX_INSTANCES} are accepted")
        return {
            name: [self.check_value(name, value, f"input {name}[{i}]") for i, value in enumerate(inputs[name])]
            for name in self.fields
        }
