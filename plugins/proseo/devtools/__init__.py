"""Tools for tests, benchmarks and the demo: sample deliveries, a local S3 endpoint."""
