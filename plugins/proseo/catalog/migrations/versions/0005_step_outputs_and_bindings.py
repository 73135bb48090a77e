"""job-step outputs and input bindings as rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:00:00

A job step's planned outputs move from the JSON column ``job_step.planned_outputs``
into ``job_step_output`` rows, and the upstream bindings of its input queries from
the JSON ``input_query.explanation`` into ``input_query_output`` rows;
``input_query.explanation`` becomes text for people. Existing catalogues are
upgraded in place: every planned output, binding, given-up binding and explanation
is carried over, and outputs already registered are linked to their products.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import proseo.catalog.db
from proseo.catalog.products import product_key, storage_key

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = proseo.catalog.db.UTCDateTime()
BATCH = 1000
#: Orders whose unfinished outputs hold a claim (they mean to make them).
ACTIVE_ORDERS = ("PLANNED", "RELEASING", "RELEASED", "RUNNING", "SUSPENDING")
ENDED_STEPS = ("COMPLETED", "FAILED", "SKIPPED")

_order = sa.table(
    "processing_order",
    sa.column("id", _ID),
    sa.column("mission_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("output_file_class", sa.String),
    sa.column("processing_mode", sa.String),
)
_job = sa.table("job", sa.column("id", _ID), sa.column("order_id", sa.Integer))
_step = sa.table(
    "job_step",
    sa.column("id", _ID),
    sa.column("job_id", _ID),
    sa.column("state", sa.String),
    sa.column("configured_processor_id", sa.Integer),
    sa.column("planned_outputs", _JSON),
)
_mission = sa.table("mission", sa.column("id", sa.Integer), sa.column("code", sa.String))
_class = sa.table(
    "product_class",
    sa.column("id", sa.Integer),
    sa.column("mission_id", sa.Integer),
    sa.column("product_type", sa.String),
)
_processor = sa.table("configured_processor", sa.column("id", sa.Integer), sa.column("identifier", sa.String))
_product = sa.table("product", sa.column("id", _ID), sa.column("job_step_id", _ID))
_file = sa.table("product_file", sa.column("product_id", _ID), sa.column("file_name", sa.String))
_output = sa.table(
    "job_step_output",
    sa.column("id", _ID),
    sa.column("job_step_id", _ID),
    sa.column("output_index", sa.Integer),
    sa.column("product_class_id", sa.Integer),
    sa.column("file_name", sa.String),
    sa.column("sensing_start", _UTC),
    sa.column("sensing_stop", _UTC),
    sa.column("orbit", sa.Integer),
    sa.column("parameters", _JSON),
    sa.column("storage_key", sa.String),
    sa.column("product_key", sa.String),
    sa.column("claim", sa.String),
    sa.column("product_id", _ID),
)
_query = sa.table(
    "input_query",
    sa.column("id", _ID),
    sa.column("job_step_id", _ID),
    sa.column("source_class_id", sa.Integer),
    sa.column("explanation", _JSON),
    sa.column("explanation_text", sa.Text),
    sa.column("origin", sa.String),
    sa.column("coverage", sa.Float),
    sa.column("refreshed_at", _UTC),
    sa.column("given_up_at", _UTC),
)
_binding = sa.table(
    "input_query_output",
    sa.column("query_id", _ID),
    sa.column("output_id", _ID),
    sa.column("policy", sa.String),
    sa.column("given_up_at", _UTC),
)


def upgrade() -> None:
    op.create_table(
        "job_step_output",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("job_step_id", _ID, sa.ForeignKey("job_step.id", ondelete="CASCADE"), nullable=False),
        sa.Column("output_index", sa.Integer(), nullable=False),
        sa.Column("product_class_id", sa.Integer(), sa.ForeignKey("product_class.id"), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sensing_start", _UTC, nullable=False),
        sa.Column("sensing_stop", _UTC, nullable=False),
        sa.Column("orbit", sa.Integer(), nullable=True),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("storage_key", sa.String(1000), nullable=False),
        sa.Column("product_key", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(64), nullable=True, unique=True),
        sa.Column("product_id", _ID, sa.ForeignKey("product.id", ondelete="SET NULL"), nullable=True),
        sa.UniqueConstraint("job_step_id", "output_index"),
    )
    op.create_index(
        "ix_job_step_output_window", "job_step_output", ["product_class_id", "sensing_start", "sensing_stop"]
    )
    op.create_index("ix_job_step_output_product", "job_step_output", ["product_id"])
    op.create_index("ix_job_step_output_key", "job_step_output", ["product_key"])
    op.create_table(
        "input_query_output",
        sa.Column("query_id", _ID, sa.ForeignKey("input_query.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "output_id", _ID, sa.ForeignKey("job_step_output.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("policy", sa.String(64), nullable=True),
        sa.Column("given_up_at", _UTC, nullable=True),
    )
    op.create_index("ix_iqo_output", "input_query_output", ["output_id"])
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.add_column(sa.Column("explanation_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("coverage", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("refreshed_at", _UTC, nullable=True))
        batch_op.add_column(sa.Column("given_up_at", _UTC, nullable=True))

    bind = op.get_bind()
    _move_outputs(bind)
    _move_bindings(bind)

    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.drop_column("explanation")
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.alter_column(
            "explanation_text", new_column_name="explanation", existing_type=sa.Text(), nullable=False
        )
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.drop_column("planned_outputs")


# --- data -----------------------------------------------------------------------------


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for offset in range(0, len(values), BATCH):
        yield values[offset : offset + BATCH]


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _move_outputs(bind: sa.Connection) -> None:
    """``job_step.planned_outputs`` -> ``job_step_output`` rows (linked to registered products)."""
    missions = dict(bind.execute(sa.select(_mission.c.id, _mission.c.code)).all())
    classes = {
        (m, t): i
        for i, m, t in bind.execute(sa.select(_class.c.id, _class.c.mission_id, _class.c.product_type)).all()
    }
    processors = dict(bind.execute(sa.select(_processor.c.id, _processor.c.identifier)).all())
    step_ids = list(bind.scalars(sa.select(_step.c.id).order_by(_step.c.id)))
    claimed: set[str] = set()
    for chunk in _chunks(step_ids):
        rows = bind.execute(
            sa.select(
                _step.c.id,
                _step.c.state,
                _step.c.configured_processor_id,
                _step.c.planned_outputs,
                _order.c.mission_id,
                _order.c.state,
                _order.c.output_file_class,
                _order.c.processing_mode,
            )
            .join(_job, _job.c.id == _step.c.job_id)
            .join(_order, _order.c.id == _job.c.order_id)
            .where(_step.c.id.in_(chunk))
        ).all()
        made: dict[tuple[int, str], int] = {}
        for pid, sid, name in bind.execute(
            sa.select(_product.c.id, _product.c.job_step_id, _file.c.file_name)
            .join(_file, _file.c.product_id == _product.c.id)
            .where(_product.c.job_step_id.in_(chunk))
        ):
            made.setdefault((sid, name), pid)
        out: list[dict[str, Any]] = []
        for sid, step_state, cp_id, planned, mission_id, order_state, file_class, mode in rows:
            for n, o in enumerate(planned or []):
                start, stop = _instant(o["start"]), _instant(o["stop"])
                assert start is not None and stop is not None
                params = dict(o.get("parameters") or {})
                key = product_key(
                    mission=missions[mission_id],
                    product_type=o["product_type"],
                    file_class=file_class,
                    mode=mode,
                    start=start,
                    stop=stop,
                    configured_processor=processors.get(cp_id),
                    parameters=params,
                )
                claim = None
                if order_state in ACTIVE_ORDERS and step_state not in ENDED_STEPS and key not in claimed:
                    claim = key
                    claimed.add(key)
                out.append(
                    {
                        "job_step_id": sid,
                        "output_index": n,
                        "product_class_id": classes[(mission_id, o["product_type"])],
                        "file_name": o["file_name"],
                        "sensing_start": start,
                        "sensing_stop": stop,
                        "orbit": o.get("orbit"),
                        "parameters": params,
                        "storage_key": storage_key(o["product_type"], start, o["file_name"]),
                        "product_key": key,
                        "claim": claim,
                        "product_id": made.get((sid, o["file_name"])),
                    }
                )
        if out:
            bind.execute(sa.insert(_output), out)


def _move_bindings(bind: sa.Connection) -> None:
    """Explanation JSON -> text, origin, coverage, times, and ``input_query_output`` rows."""
    query_ids = list(bind.scalars(sa.select(_query.c.id).order_by(_query.c.id)))
    now = datetime.now(UTC)
    for chunk in _chunks(query_ids):
        rows = bind.execute(
            sa.select(_query.c.id, _query.c.source_class_id, _query.c.explanation).where(
                _query.c.id.in_(chunk)
            )
        ).all()
        upstream_ids: set[int] = set()
        for _, _, expl in rows:
            expl = expl or {}
            upstream_ids.update(int(c["job_step"]) for c in expl.get("chosen", []) if "job_step" in c)
            upstream_ids.update(int(s) for s in expl.get("given_up_upstream", []))
        outputs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # step -> (index, id, class)
        for sid, index, oid, cid in (
            bind.execute(
                sa.select(
                    _output.c.job_step_id, _output.c.output_index, _output.c.id, _output.c.product_class_id
                ).where(_output.c.job_step_id.in_(sorted(upstream_ids)))
            ).all()
            if upstream_ids
            else []
        ):
            outputs[sid].append((index, oid, cid))
        bindings: dict[tuple[int, int], dict[str, Any]] = {}
        for qid, source_class, expl in rows:
            expl = expl or {}
            given_up = expl.get("given_up") or {}
            at = _instant(given_up.get("at")) if given_up else None
            for c in expl.get("chosen", []):
                if "job_step" not in c:
                    continue
                index = int(c.get("output", 0))
                oid = next((o for i, o, _ in outputs[int(c["job_step"])] if i == index), None)
                if oid is not None:
                    bindings[(qid, oid)] = {
                        "query_id": qid,
                        "output_id": oid,
                        "policy": c.get("policy"),
                        "given_up_at": None,
                    }
            for sid in expl.get("given_up_upstream", []):
                held = outputs[int(sid)]
                of_class = [o for _, o, cid in held if cid == source_class] or [o for _, o, _ in held]
                for oid in of_class:
                    bindings[(qid, oid)] = {
                        "query_id": qid,
                        "output_id": oid,
                        "policy": None,
                        "given_up_at": at or now,
                    }
            # A relaxed query (input timeout) says so in its own column; dropped upstream
            # references are the given-up bindings above.
            relaxed = bool(given_up) and "products" in given_up
            bind.execute(
                sa.update(_query)
                .where(_query.c.id == qid)
                .values(
                    explanation_text=str(expl.get("text") or ""),
                    origin=expl.get("origin"),
                    coverage=expl.get("coverage"),
                    refreshed_at=_instant(expl.get("refreshed_at")),
                    given_up_at=at if relaxed else None,
                )
            )
        if bindings:
            bind.execute(sa.insert(_binding), list(bindings.values()))


def downgrade() -> None:
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_outputs", _JSON, nullable=True))
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.alter_column("explanation", new_column_name="explanation_text", existing_type=sa.Text())
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.add_column(sa.Column("explanation", _JSON, nullable=True))
    bind = op.get_bind()
    types = dict(bind.execute(sa.select(_class.c.id, _class.c.product_type)).all())
    planned: dict[int, list[dict[str, Any]]] = defaultdict(list)
    step_of: dict[int, tuple[int, int, str]] = {}
    for row in bind.execute(sa.select(_output).order_by(_output.c.job_step_id, _output.c.output_index)):
        planned[row.job_step_id].append(
            {
                "product_type": types[row.product_class_id],
                "file_name": row.file_name,
                "start": row.sensing_start.isoformat(),
                "stop": row.sensing_stop.isoformat(),
                "orbit": row.orbit,
                "parameters": row.parameters or {},
            }
        )
        step_of[row.id] = (row.job_step_id, row.output_index, types[row.product_class_id])
    for sid, outs in planned.items():
        bind.execute(sa.update(_step).where(_step.c.id == sid).values(planned_outputs=outs))
    chosen: dict[int, list[dict[str, Any]]] = defaultdict(list)
    given_up: dict[int, list[int]] = defaultdict(list)
    picks = sa.table("input_query_product", sa.column("query_id", _ID), sa.column("product_id", _ID))
    for qid, pid in bind.execute(sa.select(picks.c.query_id, picks.c.product_id)).all():
        chosen[qid].append({"product": pid})
    for qid, oid, policy, at in bind.execute(sa.select(_binding)).all():
        sid, index, ptype = step_of[oid]
        if at is None:
            chosen[qid].append({"job_step": sid, "output": index, "product_type": ptype, "policy": policy})
        else:
            given_up[qid].append(sid)
    for qid, text, origin, coverage in bind.execute(
        sa.select(_query.c.id, _query.c.explanation_text, _query.c.origin, _query.c.coverage)
    ).all():
        expl: dict[str, Any] = {"origin": origin, "text": text, "coverage": coverage, "chosen": chosen[qid]}
        if given_up[qid]:
            expl["given_up_upstream"] = sorted(set(given_up[qid]))
        bind.execute(sa.update(_query).where(_query.c.id == qid).values(explanation=expl))
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        for column in ("explanation_text", "origin", "coverage", "refreshed_at", "given_up_at"):
            batch_op.drop_column(column)
    op.drop_table("input_query_output")
    op.drop_table("job_step_output")
