"""Runs the Pulumi program under ``pulumi.runtime.Mocks`` and records what it registers.

The unit and manifest tiers use it: no engine, no cluster, no provider plugin. Each registration keeps its type,
name, inputs, parent, the URNs it depends on, and which input properties were sent as secrets. Like the engine,
the mock monitor marks a resource's ``additional_secret_outputs`` secret (a generated password, the kind
cluster's kubeconfig), so secrecy flows through the program as it would in a real deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import resource_pb2

from infra import config, stack

SECRET_SIG = {rpc._special_sig_key: rpc._special_secret_sig}
PASSWORD_TYPE = "pulumi-python:dynamic/mlstack:GeneratedPassword"
KIND_TYPE = "pulumi-python:dynamic/mlstack:KindCluster"
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"


@dataclass
class Registration:
    """One resource the program registered."""

    typ: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str]
    provider: str
    secret_paths: set[str] = field(default_factory=set)


def _unwrap(value: Any) -> Any:
    """The value with every secret wrapper replaced by the value it wraps."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            yield path
            return
        for key, item in value.items():
            yield from _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _secret_paths(item, f"{path}[{i}]")


class PlatformMocks(pulumi.runtime.Mocks):
    """Outputs a real provider would add: ids, generated passwords, the kubeconfig, a GKE endpoint."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == PASSWORD_TYPE:
            # Unique per resource, so a test can tell a generated value from a literal that merely looks like one.
            state["result"] = f"{args.name}:" + "p" * int(args.inputs.get("length", 16))
        elif args.typ == KIND_TYPE:
            state["kubeconfig"] = FAKE_KUBECONFIG
        elif args.typ == "gcp:container/cluster:Cluster":
            state["endpoint"] = "203.0.113.10"
            state["masterAuth"] = {"clusterCaCertificate": "Y2EK"}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that records every registration with its dependencies and secret inputs."""

    def __init__(self, platform_mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(platform_mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]  # pulumi's MockMonitor is untyped
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = json_format.MessageToDict(request.object)
        self.registrations.append(
            Registration(
                typ=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                inputs=_unwrap(dict(self.resources[response.urn].state)) if response.urn in self.resources else {},
                dependencies=list(request.dependencies),
                provider=request.provider,
                secret_paths=set(_secret_paths(raw)),
            )
        )
        secret_outputs = list(request.additionalSecretOutputs)
        if not secret_outputs:
            return response
        state = dict(self.resources[response.urn].state)
        for key in secret_outputs:
            if key in state:
                state[key] = {**SECRET_SIG, "value": state[key]}
        obj = json_format.ParseDict(state, type(request.object)())
        return resource_pb2.RegisterResourceResponse(urn=response.urn, id=response.id, object=obj)


@dataclass
class Run:
    """The outcome of one mocked run of the program."""

    registrations: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    stack: stack.Stack

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.typ == typ]

    def named(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} registrations named {name!r}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)


def run(raw: Mapping[str, str], stack_name: str = "kind", monitor: RecordingMonitor | None = None) -> Run:
    """Run the program with ``raw`` as the stack's ``mlstack:`` config; config errors propagate (``monitor``, when
    given, shows what was registered before they did)."""
    runtime_config.set_all_config({f"{config.NAMESPACE}:{k}": v for k, v in raw.items()}, [])
    platform_mocks = PlatformMocks()
    monitor = monitor or RecordingMonitor(platform_mocks)
    mocks.set_mocks(platform_mocks, project="mlstack", stack=stack_name, preview=False, monitor=monitor)
    holder: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]  # pulumi.runtime.test has no annotations
    def program() -> pulumi.Output[Any]:
        built = stack.build(config.load(), stack_name)
        holder["stack"] = built
        keys = list(built.outputs)

        async def secrets() -> list[bool]:
            return [await built.outputs[k].is_secret() for k in keys]

        def store(values: list[Any]) -> None:
            *plain, flags = values
            holder["outputs"] = dict(zip(keys, plain, strict=True))
            holder["secret"] = {k for k, flag in zip(keys, flags, strict=True) if flag}

        flags: pulumi.Output[list[bool]] = pulumi.Output.from_input(asyncio.ensure_future(secrets()))
        return pulumi.Output.all(*built.outputs.values(), flags).apply(store)

    program()
    return Run(monitor.registrations, holder["outputs"], holder["secret"], holder["stack"])
