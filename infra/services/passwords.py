"""Generated passwords, as a Python dynamic resource.

A password is created once from the operating system's CSPRNG (``secrets``) and kept in the stack's state as a
secret output (encrypted there); updates never regenerate it, only a change of length replaces it. A dynamic
resource rather than ``pulumi_random``: it needs no provider plugin beyond the Python SDK's own, so the stack also
previews and renders where plugins cannot be downloaded (the development machines and CI build the engine from Go
modules, and no random provider is served there).
"""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

ALPHABET = string.ascii_letters + string.digits  # safe in URIs, shell arguments and YAML without quoting


def generate(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


class PasswordProvider(ResourceProvider):
    """Creates a random password; keeps it for the resource's lifetime."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        length = int(props["length"])
        return CreateResult(id_=uuid.uuid4().hex, outs={"length": length, "result": generate(length)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["length"] if int(olds["length"]) != int(news["length"]) else []
        return DiffResult(changes=bool(replaces), replaces=replaces)


class GeneratedPassword(pulumi.dynamic.Resource, module="mlstack", name="GeneratedPassword"):
    """A password of ``length`` letters and digits; ``result`` is a secret output."""

    result: pulumi.Output[str]

    def __init__(self, resource_name: str, length: int, opts: pulumi.ResourceOptions | None = None) -> None:
        if length < 16:
            raise ValueError(f"{resource_name}: passwords shorter than 16 characters are refused")
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["result"]))
        super().__init__(PasswordProvider(), resource_name, {"length": length, "result": None}, opts)
