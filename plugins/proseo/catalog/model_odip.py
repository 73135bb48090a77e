"""What the on-demand production interface (ODIP) keeps beside an order.

An ODIP ``ProductionOrder`` is a processing order plus what the ESA interface adds:
the workflow and options as the client sent them, the input product reference, the
notification endpoint with its credentials, and the notification outbox's state. The
order's life cycle stays the order's own; the row only says which *end* of the order
has been notified (the id of the ``order_event`` that ended it), so a retried order
that ends again is notified again, and each end exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from proseo.catalog.db import Base, utcnow


class OdipOrder(Base):
    __tablename__ = "odip_order"
    __table_args__ = (Index("ix_odip_order_pending", "notified_event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("processing_order.id", ondelete="CASCADE"), unique=True)
    #: The client's Name for the order (free text, not unique).
    name: Mapped[str | None] = mapped_column(String(200))
    workflow: Mapped[str] = mapped_column(String(200))
    #: WorkflowOptions as given: [{"Name": ..., "Value": ...}].
    workflow_options: Mapped[list[Any]]
    #: InputProductReference as given: {"Reference": ..., "ContentDate": {"Start", "End"}}.
    input_reference: Mapped[dict[str, Any]]
    notification_endpoint: Mapped[str | None] = mapped_column(String(1000))
    notification_username: Mapped[str | None] = mapped_column(String(200))
    notification_password: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The order_event that ended the order and has been notified (None: no end notified yet).
    notified_event_id: Mapped[int | None] = mapped_column(BigInteger)
    notified_at: Mapped[datetime | None]
    #: Delivery attempts of the current end, the last failure, and when to try again.
    notify_attempts: Mapped[int] = mapped_column(default=0)
    notify_error: Mapped[str | None] = mapped_column(Text)
    notify_next_at: Mapped[datetime | None]
    #: A dispatcher holds the delivery until then (so two dispatchers never POST the same end).
    notify_claimed_until: Mapped[datetime | None]
    #: The holding dispatcher's random token: an outcome is written only under the same token.
    notify_claim: Mapped[str | None] = mapped_column(String(32))
    #: Releases of a queued order by the sweep that failed, and when to try again.
    release_attempts: Mapped[int] = mapped_column(default=0)
    release_next_at: Mapped[datetime | None]
