"""``python -m serving.server``: one model server process for one registered version of a component."""

from __future__ import annotations

import argparse

import kserve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    parser.add_argument("--component", required=True)
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--feast-repo", required=True)
    parser.add_argument("--model-version", default="", help="registry version; default: the alias below")
    parser.add_argument("--model-alias", default="champion")
    args, _ = parser.parse_known_args(argv)

    import mlflow
    from feast import FeatureStore
    from mlflow import MlflowClient

    from contract.registry import load
    from serving.runtime import ComponentModel

    component = load(args.component)
    mlflow.set_tracking_uri(args.mlflow_uri)
    version = args.model_version or MlflowClient().get_model_version_by_alias(component.name, args.model_alias).version
    model = ComponentModel(
        component, f"models:/{component.name}/{version}", str(version), FeatureStore(args.feast_repo)
    )
    model.load()
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=1).start([model])


if __name__ == "__main__":
    main()
