"""One exception tree for the whole system.

Every error a user can provoke derives from :class:`ProseoError` and names the
place it concerns (mission, order, file, YAML path and line, character offset),
so the CLI and the REST API can print it without a traceback. Lower-level
exceptions are chained with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ProseoError(Exception):
    """Base of every error raised on purpose by proseo."""

    exit_code: int = 1


# --- configuration -----------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a mission configuration file, located to the line."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(ProseoError):
    """A mission configuration is invalid; carries every issue found, not just the first."""

    exit_code = 2

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    @property
    def file(self) -> str:
        return self.issues[0].file if self.issues else ""


# --- catalogue ---------------------------------------------------------------------


class CatalogError(ProseoError):
    """The catalogue refused an operation or could not be reached."""


class NotFoundError(CatalogError):
    """A named mission, class, product, order ... does not exist."""

    exit_code = 3


class ConflictError(CatalogError):
    """An operation would contradict what the catalogue already holds."""

    exit_code = 4


class SchemaError(CatalogError):
    """The catalogue database is not at the schema revision this code expects."""


# --- storage -----------------------------------------------------------------------


class StorageError(ProseoError):
    """A storage operation failed (after retries, where retrying made sense)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(f"{url}: {message}" if url else message)


class ChecksumMismatch(StorageError):
    """A file's size or checksum differs from what was expected."""


class StorageNotFound(StorageError):
    """A storage object does not exist."""


class ObjectExists(StorageError):
    """A create-only write found other bytes under its key: a stored object is never replaced.

    Names the key, the storage root and both objects' size and SHA-256, so an operator
    can tell which product collided with which.
    """

    def __init__(
        self,
        *,
        key: str,
        root: str,
        url: str,
        stored: tuple[int, str],
        offered: tuple[int, str],
    ) -> None:
        self.key, self.root = key, root
        self.stored_size, self.stored_sha256 = stored
        self.offered_size, self.offered_sha256 = offered
        super().__init__(
            f"key {key!r} in {root} already holds other bytes "
            f"(stored: sha256 {self.stored_sha256}, {self.stored_size} bytes; "
            f"this upload: sha256 {self.offered_sha256}, {self.offered_size} bytes); "
            "a stored object is never replaced",
            url=url,
        )


# --- ingestion ---------------------------------------------------------------------


class IngestError(ProseoError):
    """A file could not be ingested; names the file and why."""

    def __init__(self, message: str, *, file: str, mission: str | None = None) -> None:
        self.file = file
        self.mission = mission
        prefix = f"{mission}: " if mission else ""
        super().__init__(f"{prefix}{file}: {message}")


class IngestConflict(IngestError):
    """A different file already exists in the catalogue under the same product identity."""

    exit_code = 4


# --- selection rules ---------------------------------------------------------------


class RuleSyntaxError(ProseoError):
    """A selection rule does not parse; names the character offset and what was expected there."""

    exit_code = 2

    def __init__(self, text: str, offset: int, message: str, expected: list[str] | None = None) -> None:
        self.text = text
        self.offset = offset
        self.expected = expected or []
        self.reason = message
        tail = f"; expected {' or '.join(self.expected)}" if self.expected else ""
        super().__init__(f"character {offset}: {message}{tail}")

    def caret(self) -> str:
        """The rule text with a caret under the offending character."""
        return f"{self.text}\n{' ' * self.offset}^"


# --- orders and planning -------------------------------------------------------------


class OrderError(ProseoError):
    """An order request or operation was refused; names the mission and order."""

    exit_code = 2

    def __init__(self, message: str, *, mission: str | None = None, order: str | None = None) -> None:
        self.mission = mission
        self.order = order
        where = "/".join(p for p in (mission, order) if p)
        super().__init__(f"{where}: {message}" if where else message)


class IllegalTransition(OrderError):
    """An operation that the order's current state does not allow."""

    exit_code = 4

    def __init__(self, operation: str, state: str, *, allowed: list[str], mission: str, order: str) -> None:
        self.operation = operation
        self.state = state
        hint = f" (allowed from {', '.join(allowed)})" if allowed else ""
        super().__init__(f"cannot {operation} an order in state {state}{hint}", mission=mission, order=order)


class PlanningError(OrderError):
    """Planning could not produce a plan; the order goes to PLANNING_FAILED with this message."""

    exit_code = 1


class PlanTooLarge(PlanningError):
    """The plan would exceed the job-step bound; the message suggests how to split the order."""


class CampaignError(OrderError):
    """A campaign request or operation was refused; names the mission and campaign."""

    def __init__(self, message: str, *, mission: str | None = None, campaign: str | None = None) -> None:
        self.campaign = campaign
        super().__init__(message, mission=mission, order=campaign)


class CampaignTransition(IllegalTransition):
    """An operation that the campaign's current state does not allow."""

    def __init__(
        self, operation: str, state: str, *, allowed: list[str], mission: str, campaign: str
    ) -> None:
        self.operation = operation
        self.state = state
        hint = f" (allowed from {', '.join(allowed)})" if allowed else ""
        OrderError.__init__(
            self, f"cannot {operation} a campaign in state {state}{hint}", mission=mission, order=campaign
        )


# --- installation --------------------------------------------------------------------


class MissingExtra(ProseoError):
    """A feature needs an optional dependency that this installation lacks; names the extra."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        self.feature = feature
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the Python package {module!r}, which is not installed: "
            f"install the {extra!r} extra (pip install 'proseo[{extra}]')"
        )
