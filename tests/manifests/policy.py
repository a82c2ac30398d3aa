"""The security policy every object of the project's own must pass, as explicit rules.

kube-score (a maintained checker, run beside these rules where it is built) covers the same ground in general
terms; these rules pin down exactly what this project promises: non-root, no privilege escalation, all
capabilities dropped, requests and limits on every container, images pinned by tag or digest (never ``latest``),
and no password in plain text (not in env values, arguments, config maps, or Secrets rendered by charts), nor on a
command line through a password flag (``--requirepass $(REDIS_PASSWORD)`` expands into ``ps`` and
``/proc/<pid>/cmdline``: a mounted Secret file or an environment variable the program reads keeps it off).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

SENSITIVE_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|API_KEY)", re.IGNORECASE)
# user:password@ in a URI, unless the password is a $(VAR) the kubelet expands from a secretKeyRef env var, or a
# ${VAR} the program (Feast) expands from its environment
INLINE_CREDENTIAL = re.compile(r"://[^:/@\s]+:(?!\$[({])[^@\s]+@")
# password: <literal> in a config file, unless it is ${VAR} expanded from the environment
LITERAL_PASSWORD = re.compile(r"password\s*[:=]\s*(?!\$\{)[^\s,}]+", re.IGNORECASE)

# A flag that takes a password as its value (``--requirepass x``, ``--password=x``, ``-masterauth x``).
PASSWORD_FLAG = re.compile(r"^--?[a-z0-9-]*(pass|passwd|password|masterauth|secret|token)(=.*)?$", re.IGNORECASE)

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod"}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    spec: dict[str, Any] = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        inner: dict[str, Any] = spec["jobTemplate"]["spec"]["template"]["spec"]
        return inner
    if kind in WORKLOAD_KINDS:
        template: dict[str, Any] = spec["template"]["spec"]
        return template
    return None


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []


def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def default_denied_namespaces(objects: list[dict[str, Any]]) -> set[str]:
    """Namespaces with a NetworkPolicy that selects every pod for Ingress and allows nothing (default deny)."""
    return {
        (o.get("metadata") or {}).get("namespace", "")
        for o in objects
        if o.get("kind") == "NetworkPolicy"
        and (o.get("spec") or {}).get("podSelector") == {}
        and "Ingress" in ((o.get("spec") or {}).get("policyTypes") or [])
        and not (o.get("spec") or {}).get("ingress")
    }


def violations(obj: dict[str, Any]) -> list[str]:
    """Every policy violation of one object, as ``<kind>/<name>: <problem>``."""
    where = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    found: list[str] = []
    if obj.get("kind") == "NetworkPolicy":
        for rule in (obj.get("spec") or {}).get("ingress") or []:
            peers = rule.get("from")
            if not peers or any(peer == {} for peer in peers):
                found.append(f"{where}: an ingress rule that admits every source (give it `from` peers)")
    if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
        found.append(f"{where}: a Secret with literal data (charts must reference an existing Secret)")
    if obj.get("kind") == "ConfigMap":
        for key, text in (obj.get("data") or {}).items():
            if LITERAL_PASSWORD.search(str(text)) or INLINE_CREDENTIAL.search(str(text)):
                found.append(f"{where}: literal password in data[{key}]")
    pod = pod_spec(obj)
    if pod is None:
        return found
    pod_sc = pod.get("securityContext") or {}
    for c in _containers(pod):
        name = f"{where}[{c.get('name')}]"
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if non_root is not True or uid == 0:
            found.append(f"{name}: not forced to run as non-root (runAsNonRoot: true, runAsUser != 0)")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            found.append(f"{name}: capabilities not dropped (drop: [ALL])")
        resources = c.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(section) or {}).get(resource):
                    found.append(f"{name}: no {resource} {section[:-1]}")
        if not _image_pinned(str(c.get("image", ""))):
            found.append(f"{name}: image {c.get('image')!r} not pinned by tag or digest (or uses latest)")
        for env in c.get("env") or []:
            if SENSITIVE_ENV.search(env.get("name", "")) and "value" in env:
                found.append(f"{name}: env {env['name']} holds a literal value (use valueFrom.secretKeyRef)")
        for arg in [*(c.get("command") or []), *(c.get("args") or [])]:
            if INLINE_CREDENTIAL.search(str(arg)):
                found.append(f"{name}: credential inline in an argument")
            if PASSWORD_FLAG.match(str(arg)):
                found.append(
                    f"{name}: password flag {str(arg).split('=')[0]} on the command line (mount a Secret file)"
                )
    return found
