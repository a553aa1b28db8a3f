"""Create a BigQuery dataset over the REST API, if it is not there yet (the standard library only).

docker compose's one-shot ``bigquery-init`` (profile local-cloud) runs it against the emulator, so
``taxi_gcs_to_bigquery`` finds its dataset on a fresh stack; on real GCP an admin creates the
dataset beforehand (docs/gcp.md)::

    python -m local_stack.bigquery_dataset --endpoint http://bigquery-emulator:9050 \\
        --project local-project --dataset ny_taxi --location US
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request


def create_dataset(endpoint: str, project: str, dataset: str, location: str) -> bool:
    """Create ``project.dataset``; False when it already existed (HTTP 409), True when created."""
    body = {"datasetReference": {"projectId": project, "datasetId": dataset}, "location": location}
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/bigquery/v2/projects/{project}/datasets",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 409:
            return False
        raise RuntimeError(
            f"creating dataset {project}.{dataset}: HTTP {error.code} {error.read()[:500]!r}"
        ) from error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="e.g. http://bigquery-emulator:9050")
    parser.add_argument("--project", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--location", default="US")
    args = parser.parse_args()
    created = create_dataset(args.endpoint, args.project, args.dataset, args.location)
    print(f"dataset {args.project}.{args.dataset}: {'created' if created else 'already there'}")


if __name__ == "__main__":
    main()
