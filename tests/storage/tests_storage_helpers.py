"""Small helpers for the storage tests."""

from __future__ import annotations

import boto3

from proseo.devtools.s3server import MotoServer


def s3_client_for(server: MotoServer):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
