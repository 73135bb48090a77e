"""Product storage: one interface over fsspec for file:// and s3:// (no Airflow import)."""

from proseo.storage.base import FileInfo, check_key, hash_file
from proseo.storage.retry import is_transient
from proseo.storage.storage import Storage, open_storage, s3_options

__all__ = ["FileInfo", "Storage", "check_key", "hash_file", "is_transient", "open_storage", "s3_options"]
