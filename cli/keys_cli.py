"""``mlstack keys ...``: inference keys, one per consumer, checked by the gateway before a request reaches a model.

On a cluster (default) a key is a Secret in the key check's namespace (``infra/services/inference_auth.py``) holding
the key's SHA-256, labelled for the check, which sees a created or revoked key within a second (it watches them);
kubectl's current context, or ``--context``. With ``--embedded``, a line of the map file HAProxy checks
(``local/inference_keys.py``): creating the first key turns the check on at the next ``mlstack serve start``; a
running proxy that checks keys is given the new map at once. The key is printed once and stored nowhere.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import typer
from rich.console import Console

from local.errors import EmbeddedError
from local.settings import EmbeddedSettings
from serving.auth_gateway import CONSUMER_LABEL, HASH_FIELD, KEY_LABEL, check_consumer, key_hash, new_key

NAMESPACE = "inference-auth"
"""The key check's namespace (infra.services.inference_auth.NAMESPACE; cli may not import infra's services)."""

console = Console()
errors = Console(stderr=True, soft_wrap=True)
app = typer.Typer(no_args_is_help=True, help=__doc__)
ConsumerArg = Annotated[str, typer.Argument(help="Consumer name (a lower-case DNS label, e.g. checkout-service).")]
Embedded = Annotated[bool, typer.Option("--embedded", help="Embedded mode's HAProxy instead of the cluster.")]
Context = Annotated[str, typer.Option(help="kubectl context (default: the current one).")]


def secret_name(consumer: str) -> str:
    return f"key-{consumer}"


def key_secret(consumer: str, key: str) -> dict[str, Any]:
    """The Secret of ``consumer``'s key: its hash only, labelled for the key check."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(consumer),
            "namespace": NAMESPACE,
            "labels": {KEY_LABEL: "true", CONSUMER_LABEL: consumer, "app.kubernetes.io/part-of": "mlstack"},
        },
        "type": "Opaque",
        "data": {HASH_FIELD: base64.b64encode(key_hash(key).encode()).decode()},
    }


def _core(context: str) -> Any:
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        kube_config.load_kube_config(context=context or None)
    except kube_config.ConfigException as error:
        _fail(f"no cluster to reach ({error}); pass --context, or --embedded for local serving")
    return client.CoreV1Api()


def _reload_embedded(settings: EmbeddedSettings) -> list[str]:
    """Give every running proxy that checks keys the current map; the components whose proxy took it."""
    from contract.registry import available, load
    from local.model_serving import EmbeddedServing
    from local.services import EmbeddedServices

    services, reloaded = EmbeddedServices(settings), []
    root = settings.state_dir / "serving"
    for name in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        if name not in available():
            continue
        serving = EmbeddedServing(services, load(name))
        if serving.checks_keys():
            serving.reload_keys()
            reloaded.append(name)
    return reloaded


def _fail(message: str) -> None:
    errors.print(f"error: {message}", markup=False)
    raise typer.Exit(1)


@app.command("create")
def create(consumer: ConsumerArg, embedded: Embedded = False, context: Context = "") -> None:
    """Issue a key for CONSUMER (replacing its earlier one) and print it once."""
    try:
        check_consumer(consumer)
    except ValueError as error:
        _fail(str(error))
    if embedded:
        from local import inference_keys

        settings = EmbeddedSettings.from_env()
        key, _ = inference_keys.create(settings, consumer)
        reloaded = _reload_embedded(settings)
        where = f"checked now by {', '.join(reloaded)}" if reloaded else "checked from the next `mlstack serve start`"
    else:
        from kubernetes.client.exceptions import ApiException

        key = new_key()
        core, secret = _core(context), key_secret(consumer, key)
        try:
            core.create_namespaced_secret(NAMESPACE, secret)
        except ApiException as error:
            if error.status != 409:
                _fail(f"creating Secret {NAMESPACE}/{secret_name(consumer)}: {error.reason} ({error.status})")
            core.replace_namespaced_secret(secret_name(consumer), NAMESPACE, secret)
        where = f"Secret {NAMESPACE}/{secret_name(consumer)} (its hash)"
    console.print(f"key of {consumer} ({where}); shown only now:", markup=False)
    print(key)
    console.print("callers send it as the header  Authorization: Bearer <key>", markup=False)


@app.command("revoke")
def revoke(consumer: ConsumerArg, embedded: Embedded = False, context: Context = "") -> None:
    """Revoke CONSUMER's key: its next request is refused (403)."""
    if embedded:
        from local import inference_keys

        settings = EmbeddedSettings.from_env()
        if not inference_keys.revoke(settings, consumer):
            _fail(f"{consumer} has no key (`mlstack keys list --embedded`)")
        _reload_embedded(settings)
    else:
        from kubernetes.client.exceptions import ApiException

        try:
            _core(context).delete_namespaced_secret(secret_name(consumer), NAMESPACE)
        except ApiException as error:
            _fail(f"{consumer} has no key (Secret {NAMESPACE}/{secret_name(consumer)}: {error.reason})")
    console.print(f"revoked the key of {consumer}")


@app.command("list")
def list_keys(embedded: Embedded = False, context: Context = "") -> None:
    """The consumers holding a key."""
    if embedded:
        from local import inference_keys

        settings = EmbeddedSettings.from_env()
        if not inference_keys.enabled(settings):
            console.print("the key check is off (`mlstack keys create <consumer> --embedded` turns it on)")
            return
        names = sorted(inference_keys.consumers(settings).values())
    else:
        found = _core(context).list_namespaced_secret(NAMESPACE, label_selector=f"{KEY_LABEL}=true")
        names = sorted((s.metadata.labels or {}).get(CONSUMER_LABEL, s.metadata.name) for s in found.items)
    console.print("\n".join(names) if names else "no consumer holds a key: every request is refused")


@app.command("disable")
def disable() -> None:
    """Embedded mode only: turn the key check off (every key goes) from the next `mlstack serve start`."""
    from local import inference_keys

    try:
        was_on = inference_keys.disable(EmbeddedSettings.from_env())
    except EmbeddedError as error:
        _fail(str(error))
    console.print("key check off from the next `mlstack serve start`" if was_on else "the key check was already off")
