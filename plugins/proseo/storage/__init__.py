"""Product storage: one interface over fsspec for file:// and s3:// (imports no Airflow).

``Storage`` is a root URL addressed by relative keys; copies stream and checksum in one
pass, writes are atomic, transient failures are retried. See docs/architecture.md.
"""

from proseo.storage.hashing import FileInfo, hash_file
from proseo.storage.keys import check_key
from proseo.storage.retry import is_transient
from proseo.storage.s3 import s3_options
from proseo.storage.storage import Storage, open_storage

__all__ = ["FileInfo", "Storage", "check_key", "hash_file", "is_transient", "open_storage", "s3_options"]
