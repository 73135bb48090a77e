"""Values every catalogue backend can store, checked where they enter (API, CLI, order files).

PostgreSQL refuses NUL characters in text (psycopg raises ``DataError`` for any
parameter holding one, even in a query), enforces ``VARCHAR(n)`` lengths and 64-bit
integers; SQLite does none of this, so an unchecked value works in tests and fails
as a server error in production. The pydantic types here carry those limits, so a
model refuses such a value with the field's name; :func:`check_text` does the same
for plain arguments (a user name given to ``proseo access grant``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

#: The largest integer a 64-bit column (ids, offsets) holds.
MAX_INT64 = 2**63 - 1


def refuse_nul(value: str) -> str:
    """``value`` unchanged, or ValueError naming where its first NUL character is."""
    if "\x00" in value:
        raise ValueError(f"NUL character at position {value.index(chr(0))}: text cannot contain NUL (\\0)")
    return value


def nul_in(value: Any, where: str = "") -> str | None:
    """Where the first string with a NUL character sits in nested data (``a.b[2]``), or None."""
    if isinstance(value, str):
        return where or "(value)" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = nul_in(key, f"{where}.{key!s}" if where else str(key)) or nul_in(
                item, f"{where}.{key!s}" if where else str(key)
            )
            if found:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_in(item, f"{where}[{i}]")
            if found:
                return found
    return None


def check_text(value: str, *, field: str, max_length: int) -> str:
    """``value`` if it fits a column of ``max_length`` and has no NUL; ValueError naming ``field``."""
    if len(value) > max_length:
        raise ValueError(f"{field}: at most {max_length} characters, got {len(value)}")
    try:
        return refuse_nul(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


NoNul = AfterValidator(refuse_nul)
#: Unbounded text (``Text`` columns, JSON values): NUL refused.
Text = Annotated[str, NoNul]
#: Short names: product types, parameter keys, facilities (``VARCHAR(64)``).
Name64 = Annotated[str, StringConstraints(max_length=64), NoNul]
#: Modes and file classes (``VARCHAR(32)``).
Name32 = Annotated[str, StringConstraints(max_length=32), NoNul]
#: Configured-processor ids (``VARCHAR(128)``).
Name128 = Annotated[str, StringConstraints(max_length=128), NoNul]
#: User names (``VARCHAR(256)``, as Airflow's auth managers allow long ones).
UserName = Annotated[str, StringConstraints(min_length=1, max_length=256), NoNul]
#: URLs and paths (``VARCHAR(1000)``).
Url = Annotated[str, StringConstraints(max_length=1000), NoNul]
