"""Tools for tests, benchmarks and the demo: sample data, a local S3 endpoint."""
