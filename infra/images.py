"""The project's own images (streaming job, serving runtime, pipeline steps): content-derived tags, the commands
that build them and put them where the cluster pulls from, and the Pulumi resource that runs those commands.

A tag is the first 16 hex digits of a SHA-256 over every file of the image's build context (path and bytes), so
an unchanged context yields the same tag and Pulumi sees no change: nothing is rebuilt or reloaded. On kind the
image is loaded into the cluster's nodes (``kind load docker-image``); on a cloud stack it is pushed to
``imageRegistry``.

Why a Python dynamic provider and not ``pulumi-docker-build``: that provider's plugin is a Go binary downloaded at
deploy time from GitHub releases, which the development machines cannot reach; the dynamic provider needs no plugin
and runs the same ``docker build`` a contributor would. ``mlstack:images: prebuilt`` skips building altogether and
references the content tags (CI or ``python -m infra.images build`` built them).

Per component: each component's serving and pipeline images hold the shared code plus only that component's
package, and register only its entry point (build arguments ``COMPONENT`` and ``ENTRY_POINTS``); their tag is
``<component>-<digest>`` over exactly those inputs, so adding or changing one component changes no other
component's image reference, and none of its pods. The streaming image holds no component code and is shared;
so is the all-components pipeline image the shared Ray search cluster runs (``IMAGES["pipeline"]``).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = REPO_ROOT / "images"
TAG_LENGTH = 16
# Never part of a build context: caches, local state, virtualenvs, build output, VCS metadata.
EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "target", ".venv", ".git"}


@dataclass(frozen=True)
class ImageSpec:
    """One of the project's images."""

    name: str
    """Short name; the repository is ``mlstack-<name>``."""
    sources: tuple[str, ...]
    """Repository-relative files and folders the Dockerfile copies (its build context, besides itself)."""
    build_args: tuple[tuple[str, str], ...] = ()
    """``--build-arg`` pairs; part of the tag, as the files are."""
    variant: str = ""
    """The component an image is built for (its tag's prefix); empty for a shared image."""

    @property
    def dockerfile(self) -> Path:
        return IMAGES_DIR / self.name / "Dockerfile"

    @property
    def repository(self) -> str:
        return f"mlstack-{self.name}"


ENTRY_POINT_TABLE = ("project", "entry-points", "mlstack.components")
# The code every serving and pipeline image holds, whichever components it carries.
_SHARED_CODE = ("requirements/main.txt", "contract", "pipelines", "serving", "components/__init__.py")
_IMAGE_CODE = {"pipeline": ("monitoring",)}
"""Code only one of those images holds: the pipeline image also runs the monitor exporter (``monitoring``)."""
PER_COMPONENT = ("serving", "pipeline")
"""The images built once per component; the others are shared."""


def entry_points(root: Path = REPO_ROOT) -> dict[str, str]:
    """The project's components as ``pyproject.toml`` registers them: name -> ``module:attribute``."""
    table: dict[str, object] = tomllib.loads((root / "pyproject.toml").read_text())
    for key in ENTRY_POINT_TABLE:
        value = table.get(key, {})
        table = value if isinstance(value, dict) else {}
    return {str(name): str(target) for name, target in sorted(table.items())}


def _registering(points: dict[str, str]) -> tuple[str, str]:
    # One token per entry point, space-separated; the Dockerfile writes each as a line of the image's pyproject.
    return ("ENTRY_POINTS", " ".join(f"{name}={target}" for name, target in sorted(points.items())))


def for_component(name: str, component: str, root: Path = REPO_ROOT) -> ImageSpec:
    """Image ``name`` (serving or pipeline) for one component: the shared code, its package, its entry point."""
    if name not in PER_COMPONENT:
        raise ValueError(f"image {name!r} is shared, not built per component; per component: {PER_COMPONENT}")
    points = entry_points(root)
    if component not in points:
        raise ValueError(f"component {component!r} is not registered in pyproject.toml; registered: {list(points)}")
    return ImageSpec(
        name,
        (*_SHARED_CODE, *_IMAGE_CODE.get(name, ()), f"components/{component}"),
        (("COMPONENT", component), _registering({component: points[component]})),
        variant=component,
    )


def component_images(component: str, root: Path = REPO_ROOT) -> dict[str, ImageSpec]:
    """The images one component's pods run, by role (``streaming``, ``serving``, ``pipeline``)."""
    return {"streaming": IMAGES["streaming"], **{name: for_component(name, component, root) for name in PER_COMPONENT}}


def every_component(name: str, root: Path = REPO_ROOT) -> ImageSpec:
    """Image ``name`` with every registered component (an empty COMPONENT copies all of ``components/``): the
    shared Ray search cluster's image, the one a new component changes besides its own."""
    code = (*_SHARED_CODE, *_IMAGE_CODE.get(name, ()), "components")
    return ImageSpec(name, code, (("COMPONENT", ""), _registering(entry_points(root))))


IMAGES: dict[str, ImageSpec] = {
    "streaming": ImageSpec(
        "streaming",
        (
            "requirements/streaming.txt",
            "contract",
            "pipelines/streaming",
            "pipelines/__init__.py",
            # The monitor job runs on the feature job's image: its module and SQL, no other monitoring code.
            "monitoring/__init__.py",
            "monitoring/monitor_job.py",
            "monitoring/monitor_sql.py",
        ),
    ),
    "pipeline": every_component("pipeline"),
}
"""The shared images."""


def resource_name(spec: ImageSpec) -> str:
    """The Pulumi name of the resource building ``spec``: ``image-<name>[-<component>]``."""
    return f"image-{spec.name}-{spec.variant}" if spec.variant else f"image-{spec.name}"


def context_files(spec: ImageSpec, root: Path = REPO_ROOT) -> list[Path]:
    """Every file the image's build depends on, sorted: its Dockerfile (and ignore file) and its sources."""

    def walk(path: Path) -> Iterator[Path]:
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(root).parts
                if child.is_file() and not EXCLUDED_PARTS.intersection(relative) and child.suffix != ".pyc":
                    yield child

    dockerfile = root / spec.dockerfile.relative_to(REPO_ROOT)
    files = [dockerfile, *[p for p in [dockerfile.with_name("Dockerfile.dockerignore")] if p.exists()]]
    for source in spec.sources:
        files.extend(walk(root / source))
    return sorted(set(files))


def content_tag(spec: ImageSpec, root: Path = REPO_ROOT) -> str:
    """The image's tag: a digest of its build context, stable across machines and checkouts."""
    digest = hashlib.sha256()
    for path in context_files(spec, root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for key, value in spec.build_args:
        digest.update(f"\0--build-arg\0{key}={value}".encode())
    tag = digest.hexdigest()[:TAG_LENGTH]
    return f"{spec.variant}-{tag}" if spec.variant else tag


def reference(spec: ImageSpec, registry: str = "", root: Path = REPO_ROOT) -> str:
    """``[<registry>/]mlstack-<name>:[<component>-]<content tag>``."""
    prefix = f"{registry.rstrip('/')}/" if registry else ""
    return f"{prefix}{spec.repository}:{content_tag(spec, root)}"


def build_command(spec: ImageSpec, ref: str) -> list[str]:
    """``docker buildx build --load`` with the repository root as context.

    BuildKit explicitly (buildx): it reads ``<Dockerfile>.dockerignore`` (so the context is only what the image
    copies) and verifies ``ADD --checksum``; the legacy builder would send the whole repository and ignore both.
    """
    args = [word for key, value in spec.build_args for word in ("--build-arg", f"{key}={value}")]
    return [
        *("docker", "buildx", "build", "--load", "--file", str(spec.dockerfile)),
        *args,
        *("--tag", ref, str(REPO_ROOT)),
    ]


def publish_commands(ref: str, kind_cluster: str | None) -> list[list[str]]:
    """Make ``ref`` pullable by the cluster: load it into kind's nodes, or push it to the registry."""
    if kind_cluster is not None:
        return [["kind", "load", "docker-image", ref, "--name", kind_cluster]]
    return [["docker", "push", ref]]


def commands(spec: ImageSpec, ref: str, kind_cluster: str | None) -> list[list[str]]:
    return [build_command(spec, ref), *publish_commands(ref, kind_cluster)]


def _run(cmds: Sequence[Sequence[str]]) -> None:
    for cmd in cmds:
        try:
            result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise RuntimeError(
                f"{cmd[0]} not found: install it (images need docker; loading them needs kind)"
            ) from None
        if result.returncode != 0:
            tail = " / ".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({result.returncode}): {tail}")


class _ImageProvider(pulumi.dynamic.ResourceProvider):
    """Builds and publishes on create; a new content tag (a changed context) replaces; same tag: no-op."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        _run(props["commands"])
        return pulumi.dynamic.CreateResult(id_=str(props["ref"]), outs=dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = olds.get("ref") != news.get("ref")
        return pulumi.dynamic.DiffResult(
            changes=changed, replaces=["ref"] if changed else [], delete_before_replace=False
        )

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Images stay in the node's or registry's store; the cluster's garbage collection owns them.
        return None


class ProjectImage(pulumi.dynamic.Resource):
    """One of the project's images, built and published when its content tag is new; ``ref`` is what pods use."""

    ref: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ImageSpec,
        ref: str,
        kind_cluster: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "ref": ref,
            "image": spec.name,
            "component": spec.variant,
            "commands": commands(spec, ref, kind_cluster),
        }
        super().__init__(_ImageProvider(), name, props, opts)


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.images tags|build [--registry R] [--kind-cluster C]``: print or build the images."""
    parser = argparse.ArgumentParser(prog="python -m infra.images", description=main.__doc__)
    parser.add_argument("command", choices=["tags", "build"])
    parser.add_argument("--registry", default="")
    parser.add_argument("--kind-cluster", default=None, help="load into this kind cluster instead of pushing")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    parser.add_argument("--component", action="append", help="only this component's images (repeatable)")
    args = parser.parse_args(argv)
    # With --component: that component's images (the shared streaming one among them), not the all-components one.
    shared = [IMAGES["streaming"]] if args.component else list(IMAGES.values())
    chosen = args.component or list(entry_points())
    for spec in [*shared, *(for_component(name, c) for c in chosen for name in PER_COMPONENT)]:
        ref = reference(spec, args.registry)
        if args.command == "tags":
            print(f"{resource_name(spec).removeprefix('image-')}: {ref}")
            continue
        cmds = (
            commands(spec, ref, args.kind_cluster)
            if (args.registry or args.kind_cluster)
            else [build_command(spec, ref)]
        )
        for cmd in cmds:
            print("+ " + " ".join(cmd), flush=True)
        if not args.dry_run:
            try:
                _run(cmds)
            except RuntimeError as error:
                print(error, file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
