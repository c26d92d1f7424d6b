"""The delivery ledger: one row per (edition, subscriber), never two.

States and when each is committed (see ``digest.models.DeliveryState``):
queued -> sending (claimed, before MAIL FROM) -> in_data (after the relay said 354, before
the body is written) -> sent | deferred | failed | unknown; skipped when the subscriber left
before their turn.

Each claim stamps the row with the run's id and counts an attempt, so a run never re-claims a
row it already handled (a deferred row waits for the run's own retry schedule or for the next
run). When several workers share an edition (``digest.store.workers``), the pair (run id,
attempt) is the claim's fencing token: a worker whose lease expired, and whose rows were taken
over, finds that its writes match nothing, and its ``in_data`` mark fails, so the body never
goes. ``LedgerQueries`` is the ``Ledger`` of ``digest.store.protocols``, where its values
(``Claimed``, ``Outcome``) are defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)

from digest.models import (
    EVERY_READER,
    PROBLEM_STATES,
    DeliveryState,
    EditionState,
    Readers,
    Subscriber,
    SubscriberStatus,
)
from digest.store import schema
from digest.store._sql import address_hash, insert_ignore
from digest.store.protocols import Claimed, Outcome
from digest.store.subscribers import _sections_out

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

d, s, sub, lst, sup, om = (
    schema.deliveries,
    schema.subscribers,
    schema.subscriptions,
    schema.lists,
    schema.suppressions,
    schema.delivery_omissions,
)
QUEUED, SENDING, IN_DATA = DeliveryState.queued, DeliveryState.sending, DeliveryState.in_data
DEFERRED, FAILED, UNKNOWN = DeliveryState.deferred, DeliveryState.failed, DeliveryState.unknown


# Built once: a run commits thousands of small batches, and building the statement (not
# running it) was most of the cost of each.
_WRITE = (
    update(d)
    .where(d.c.id == bindparam("row"))
    .values(
        state=bindparam("st"),
        updated_at=bindparam("at"),
        last_code=bindparam("code"),
        last_reply=bindparam("reply"),
        # Typed: a bare parameter inside COALESCE would skip the column type's conversion
        # (an aware time stored with its offset rather than in UTC).
        message_id=func.coalesce(bindparam("mid", type_=d.c.message_id.type), d.c.message_id),
        relay=func.coalesce(bindparam("relay", type_=d.c.relay.type), d.c.relay),
        sent_at=func.coalesce(bindparam("sent", type_=d.c.sent_at.type), d.c.sent_at),
    )
)


# The same, written only while the run's claim holds (shared editions).
_WRITE_FENCED = _WRITE.where(d.c.run_id == bindparam("run"), d.c.attempts == bindparam("att"))


class _PreparedWrite:
    """``_WRITE`` compiled once for a dialect, run as the driver's executemany: a group's
    rows go as plain tuples, with the one timestamp of the group converted once, rather than
    each row's values through SQLAlchemy's bind processing (which cost as much as the
    statement itself)."""

    def __init__(self, statement: Any, engine: Engine):
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        positional = compiled.positional
        self.names: list[str] | None = list(compiled.positiontup or []) if positional else None
        stamp = d.c.updated_at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        self._stamp: Callable[[datetime], Any] = stamp or (lambda value: value)

    def run(self, conn: Connection, outcomes: Sequence[Outcome], now: datetime) -> None:
        rows = _write_params(outcomes, self._stamp(now))
        if self.names is not None:
            names = self.names
            conn.exec_driver_sql(self.sql, [tuple(row[n] for n in names) for row in rows])
        else:
            conn.exec_driver_sql(self.sql, rows)


def _write_params(outcomes: Sequence[Outcome], now: Any, run_id: str | None = None) -> list[dict]:
    return [
        {
            "row": o.row_id,
            "st": o.state.value,
            "at": now,
            "code": o.code,
            "reply": o.reply,
            "mid": o.message_id,
            "relay": o.relay,
            "sent": now if o.state is DeliveryState.sent else None,
            **({"run": run_id, "att": o.attempt} if run_id else {}),
        }
        for o in outcomes
    ]


def _fenced_write(
    conn: Connection, outcomes: Sequence[Outcome], now: datetime, run_id: str
) -> set[int]:
    """Write outcomes only where ``run_id``'s claim still holds; return the rows whose
    ``in_data`` mark failed (the body must not go)."""
    marks = [o for o in outcomes if o.state is IN_DATA]
    lost: set[int] = set()
    if marks:
        # Taking `in_data` is the one step that must know it succeeded: one statement for
        # the group, that says which rows it took.
        taken = set(
            conn.scalars(
                update(d)
                .where(
                    tuple_(d.c.id, d.c.attempts).in_([(o.row_id, o.attempt) for o in marks]),
                    d.c.run_id == run_id,
                    d.c.state == SENDING,
                )
                .values(state=IN_DATA, updated_at=now)
                .returning(d.c.id)
            )
        )
        lost = {o.row_id for o in marks} - taken
    rest = [o for o in outcomes if o.row_id not in lost]
    if rest:
        conn.execute(_WRITE_FENCED, _write_params(rest, now, run_id))
    return lost


# PostgreSQL: a whole group of fenced outcomes in one statement, so one round trip. Each
# outcome is a row of the arrays; a row is written only while the run's claim (run id and
# attempt) holds, and an `in_data` mark only over `sending`. RETURNING says which marks took.
# Run in autocommit: the one statement is its own transaction, with no BEGIN or COMMIT
# round trips around it, and psycopg prepares it once it has run a few times.
_PG_FENCED_WRITE = f"""
UPDATE {schema.deliveries.name} AS d
SET state = v.st,
    updated_at = %(now)s,
    last_code = v.code,
    last_reply = v.reply,
    message_id = COALESCE(v.mid, d.message_id),
    relay = COALESCE(v.relay, d.relay),
    sent_at = CASE WHEN v.st = '{DeliveryState.sent.value}' THEN %(now)s ELSE d.sent_at END
FROM unnest(
    %(row)s::integer[], %(att)s::integer[], %(st)s::text[], %(code)s::integer[],
    %(reply)s::text[], %(mid)s::text[], %(relay)s::text[]
) AS v(id, att, st, code, reply, mid, relay)
WHERE d.id = v.id
  AND d.run_id = %(run)s
  AND d.attempts = v.att
  AND (v.st <> '{IN_DATA.value}' OR d.state = '{SENDING.value}')
RETURNING d.id, v.st
"""


def _pg_fenced_write(
    conn: Connection, outcomes: Sequence[Outcome], now: datetime, run_id: str
) -> set[int]:
    """``_fenced_write`` in one statement (PostgreSQL, autocommit)."""
    taken = conn.exec_driver_sql(
        _PG_FENCED_WRITE,
        {
            "now": now,
            "run": run_id,
            "row": [o.row_id for o in outcomes],
            "att": [o.attempt for o in outcomes],
            "st": [o.state.value for o in outcomes],
            "code": [o.code for o in outcomes],
            "reply": [o.reply for o in outcomes],
            "mid": [o.message_id for o in outcomes],
            "relay": [o.relay for o in outcomes],
        },
    ).all()
    marked = {row for row, state in taken if state == IN_DATA.value}
    return {o.row_id for o in outcomes if o.state is IN_DATA} - marked


class LedgerWriter:
    """Commits a run's outcomes over one connection kept open for the run (a connection per
    commit, from the pool, cost as much as the commit itself).

    With ``run_id`` (an edition shared by several workers) every write is fenced by the claim
    (run id and attempt) and ``write`` returns the rows whose ``in_data`` mark failed. On
    PostgreSQL such a write is one statement, in autocommit: one round trip per group."""

    def __init__(self, engine: Engine, run_id: str | None = None):
        self._engine = engine
        self._run_id = run_id
        self._conn: Connection | None = None
        self._autocommit = False
        self._one_statement = run_id is not None and engine.dialect.name == "postgresql"
        self._plain = _PreparedWrite(_WRITE, engine)

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        """Commit ``outcomes`` in one transaction; on return they are durable."""
        if not outcomes:
            return set()
        # A row twice in one group (an outcome after its mark) is written in order, in
        # statements of their own; the one statement would apply only one of them.
        one_statement = self._one_statement and len({o.row_id for o in outcomes}) == len(outcomes)
        try:
            if one_statement:
                assert self._run_id is not None
                return _pg_fenced_write(
                    self._connection(autocommit=True), outcomes, now, self._run_id
                )
            conn = self._connection(autocommit=False)
            with conn.begin():
                if self._run_id is not None:
                    return _fenced_write(conn, outcomes, now, self._run_id)
                self._plain.run(conn, outcomes, now)
                return set()
        except BaseException:
            self.close()  # a connection that failed mid-transaction is not reused
            raise

    def _connection(self, *, autocommit: bool) -> Connection:
        if self._conn is None:
            self._conn, self._autocommit = self._engine.connect(), False
            if self._one_statement:
                # The group statement's plan is the same for every group (a primary-key
                # lookup per row): made once, not at each execution (a tenth of a commit's
                # round trip). A setting of the session: ``close`` takes it back.
                self._conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                self._conn.commit()
        if self._autocommit != autocommit:
            level = "AUTOCOMMIT" if autocommit else self._engine.dialect.default_isolation_level
            self._conn.execution_options(isolation_level=level)
            self._autocommit = autocommit
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._one_statement:
                conn.exec_driver_sql("RESET plan_cache_mode")
                conn.commit()
        except Exception:
            conn.invalidate()  # a session whose setting stays never goes back to the pool
        finally:
            conn.close()


ENQUEUE_BATCH = 1000  # subscribers read and ledger rows written per statement


def _chunks(items: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _queued(
    edition_id: int, subscriber_ids: Sequence[int], now: datetime, due: datetime | None = None
) -> list[dict]:
    return [
        {
            "edition_id": edition_id,
            "subscriber_id": sid,
            "state": QUEUED.value,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "due_at": due,
        }
        for sid in subscriber_ids
    ]


def reads_series(readers: Readers) -> Any:
    """The condition on a subscription for getting the series ``readers`` names."""
    if readers.frequency is not None:
        return sub.c.frequency == readers.frequency
    if not readers.others:
        return true()
    return or_(sub.c.frequency.is_(None), sub.c.frequency.not_in(readers.others))


# A reader's zone, to fill a ledger zone by zone (None: the reader has none).
Zone = str | None


def _in_zone(zone: Zone) -> Any:
    return s.c.timezone.is_(None) if zone is None else s.c.timezone == zone


def _recipients(query: Select, list_name: str, *where: Any) -> Select:
    """``query`` over the list's recipients: active people subscribed and not paused (and
    matching ``where``). Suppressions are matched by each caller: by hash, in Python or in
    SQL."""
    return (
        query.join(sub, sub.c.subscriber_id == s.c.id)
        .join(lst, lst.c.id == sub.c.list_id)
        .where(
            lst.c.name == list_name,
            s.c.status == SubscriberStatus.active.value,
            sub.c.state == "active",
            sub.c.paused == 0,
            *where,
        )
    )


def _recipient_batches(conn: Connection, list_name: str, size: int, *where: Any) -> Iterator[list]:
    """The list's recipients (those matching ``where``: a series, zones) in batches of at
    most ``size`` rows, by subscriber id (keyset paging: each batch is one short query,
    whatever the size of the list)."""
    query = (
        _recipients(select(s.c.id, s.c.email, s.c.name, sub.c.sections), list_name, *where)
        .order_by(s.c.id)
        .limit(size)
    )
    last = 0
    while rows := conn.execute(query.where(s.c.id > last)).all():
        last = rows[-1].id
        # Suppressions are matched by hash (erased addresses keep nothing else).
        hashes = {r.id: address_hash(r.email) for r in rows}
        suppressed = set(
            conn.scalars(
                select(sup.c.address_hash).where(sup.c.address_hash.in_(set(hashes.values())))
            )
        )
        yield [r for r in rows if hashes[r.id] not in suppressed]


def _enqueue_in_sql(
    dialect: str,
    edition_id: int,
    list_name: str,
    now: datetime,
    due: datetime | None = None,
    *where: Any,
) -> PgInsert | SqliteInsert:
    """INSERT ... SELECT of the list's recipients (those matching ``where``: a series, a
    zone) into the ledger, in one statement, each row due at ``due`` (None: at once).

    The same rule as ``_recipient_batches``; a suppression is matched by the SHA-256 of the
    stored case-folded address, which is what ``address_hash`` computes in Python: on
    PostgreSQL the server computes it, on SQLite the function ``digest_address_hash`` that
    every connection of the store registers (``digest.store._sql.key_hash``)."""
    if dialect == "postgresql":
        folded_hash = func.encode(func.sha256(func.convert_to(s.c.email_key, "UTF8")), "hex")
    else:
        folded_hash = func.digest_address_hash(s.c.email_key)
    recipients = _recipients(
        select(
            literal(edition_id),
            s.c.id,
            literal(QUEUED.value),
            literal(0),
            literal(now, d.c.created_at.type),
            literal(now, d.c.updated_at.type),
            literal(due, d.c.due_at.type),
        ),
        list_name,
        ~select(sup.c.id).where(sup.c.address_hash == folded_hash).exists(),
        *where,
    ).order_by(s.c.id)
    return insert_ignore(dialect, d, ["edition_id", "subscriber_id"]).from_select(
        [
            "edition_id",
            "subscriber_id",
            "state",
            "attempts",
            "created_at",
            "updated_at",
            "due_at",
        ],
        recipients,
    )


def recipient_zones(conn: Connection, list_name: str, readers: Readers = EVERY_READER) -> set[Zone]:
    """The zones the list's current recipients (of the series ``readers`` names) chose
    (None: some have none)."""
    return set(
        conn.scalars(_recipients(select(s.c.timezone).distinct(), list_name, reads_series(readers)))
    )


def fill_ledger(
    conn: Connection,
    dialect: str,
    edition_id: int,
    list_name: str,
    now: datetime,
    readers: Readers = EVERY_READER,
    due: Callable[[Zone], datetime] | None = None,
) -> int:
    """Create, in ``conn``'s transaction, the missing ledger rows for everyone the list's
    edition goes to (active, subscribed, not paused, not suppressed, reading its series),
    each with the articles it leaves out (``record_omissions``); returns how many rows the
    edition's ledger holds now (read in the same transaction).

    One INSERT ... SELECT on either engine (per zone, with ``due``): the rows never pass
    through Python, which on SQLite cost more than a second per 20,000 recipients.

    ``due`` (a list delivering in each reader's zone) gives the moment a reader's row
    becomes due from the reader's zone: the rows are written zone by zone, the earliest
    first, so the claims, which read rows in id order, meet the due ones first."""
    series = reads_series(readers)
    parts: list[tuple[datetime | None, tuple]] = [(None, ())]
    if due is not None:
        zones = recipient_zones(conn, list_name, readers)
        moments = sorted(((due(zone), zone) for zone in zones), key=lambda m: m[0])
        parts = [(moment, (_in_zone(zone),)) for moment, zone in moments]
    for moment, where in parts:
        conn.execute(_enqueue_in_sql(dialect, edition_id, list_name, now, moment, series, *where))
    record_omissions(conn, edition_id)
    return conn.execute(select(func.count()).where(d.c.edition_id == edition_id)).scalar_one()


# A message in one of these states may have reached its reader (or will): its articles are
# not sent to that reader again in another edition of the list.
_RECEIVED = [s.value for s in DeliveryState if s not in (FAILED, DeliveryState.skipped)]


def record_omissions(conn: Connection, edition_id: int) -> None:
    """Record, for each ledger row of the edition, the articles of it that another edition
    of the list already holds for the same reader, in a row that may have reached them (a
    reader who changed frequency: Monday's daily, then the week's weekly). Idempotent.

    Another edition's article counts only if that row did not leave it out itself."""
    e, ea = schema.editions, schema.edition_articles
    mine, theirs, other = ea.alias("mine"), ea.alias("theirs"), e.alias("other")
    list_id = select(e.c.list_id).where(e.c.id == edition_id).scalar_subquery()
    # First the few (edition, article) pairs this edition shares with the list's others:
    # usually none, and then no reader is looked at.
    shared = conn.execute(
        select(theirs.c.edition_id, theirs.c.article_id)
        .join(mine, mine.c.article_id == theirs.c.article_id)
        .join(other, other.c.id == theirs.c.edition_id)
        .where(
            mine.c.edition_id == edition_id,
            theirs.c.edition_id != edition_id,
            other.c.list_id == list_id,
        )
    ).all()
    if not shared:
        return
    new, old = d.alias("new"), d.alias("old")
    held = select(om.c.delivery_id)
    pairs = (
        select(new.c.id, theirs.c.article_id)
        .distinct()
        .select_from(new)
        .join(
            old,
            and_(
                old.c.subscriber_id == new.c.subscriber_id,
                old.c.edition_id.in_({r.edition_id for r in shared}),
                old.c.state.in_(_RECEIVED),
            ),
        )
        .join(
            theirs,
            and_(
                theirs.c.edition_id == old.c.edition_id,
                theirs.c.article_id.in_({r.article_id for r in shared}),
            ),
        )
        .where(
            new.c.edition_id == edition_id,
            ~held.where(
                om.c.delivery_id == old.c.id, om.c.article_id == theirs.c.article_id
            ).exists(),
            ~held.where(
                om.c.delivery_id == new.c.id, om.c.article_id == theirs.c.article_id
            ).exists(),
        )
    )
    conn.execute(om.insert().from_select(["delivery_id", "article_id"], pairs))


def _omissions(conn: Connection, row_ids: Sequence[int]) -> dict[int, frozenset[int]]:
    """The articles each of these ledger rows leaves out (rows leaving out none are absent)."""
    found: dict[int, set[int]] = {}
    for row_id, article_id in conn.execute(
        select(om.c.delivery_id, om.c.article_id).where(om.c.delivery_id.in_(list(row_ids)))
    ):
        found.setdefault(row_id, set()).add(article_id)
    return {row_id: frozenset(ids) for row_id, ids in found.items()}


def _ripe(now: datetime | None) -> list:
    """Rows whose moment has come by ``now`` (None: every row)."""
    return [] if now is None else [or_(d.c.due_at.is_(None), d.c.due_at <= now)]


def _claim_query(edition_id: int, list_name: str) -> Select:
    """An edition's ledger rows in id order, each with its subscriber as of now (the list's
    subscription outer-joined: a removed one reads as NULL)."""
    list_id = select(lst.c.id).where(lst.c.name == list_name).scalar_subquery()
    return (
        select(
            d.c.id,
            d.c.subscriber_id,
            s.c.email,
            s.c.name,
            s.c.status,
            sub.c.sections,
            sub.c.list_id,
            sub.c.state.label("sub_state"),
            sub.c.paused,
        )
        .join(s, s.c.id == d.c.subscriber_id)
        .outerjoin(sub, and_(sub.c.subscriber_id == s.c.id, sub.c.list_id == list_id))
        .where(d.c.edition_id == edition_id)
        .order_by(d.c.id)
    )


def _due(resend_unknown: bool) -> list[DeliveryState]:
    return [QUEUED, DEFERRED] + ([UNKNOWN] if resend_unknown else [])


class LedgerQueries:
    engine: Engine
    dialect: str

    if TYPE_CHECKING:  # WorkerQueries's, the other half of the Store

        def live_runs(self) -> Select[tuple[str]]: ...

        def reap_workers(self) -> int: ...

    def enqueue(self, edition_id: int, subscriber_ids: Iterable[int], now: datetime) -> int:
        """Create the missing ledger rows of an edition; returns how many were new.

        ``subscriber_ids`` is consumed as it goes, 1,000 rows per statement, so a generator
        never has to be held in memory whole."""
        before = self._rows(edition_id)
        stmt = insert_ignore(self.dialect, d, ["edition_id", "subscriber_id"])
        with self.engine.begin() as conn:
            for chunk in _chunks(subscriber_ids, ENQUEUE_BATCH):
                conn.execute(stmt, _queued(edition_id, chunk, now))
        return self._rows(edition_id) - before

    def enqueue_list(
        self,
        edition_id: int,
        list_name: str,
        now: datetime,
        readers: Readers = EVERY_READER,
        due: Callable[[Zone], datetime] | None = None,
    ) -> int:
        """Create the missing ledger rows for everyone the list's edition goes to (active,
        subscribed, not paused, not suppressed); returns how many were new.

        One INSERT ... SELECT (``fill_ledger``): the rows never pass through this process, so
        memory stays flat whatever the size of the list."""
        before = self._rows(edition_id)
        with self.engine.begin() as conn:
            fill_ledger(conn, self.dialect, edition_id, list_name, now, readers, due)
            # In the same transaction: an edition is `sending` once its ledger is whole.
            editions = schema.editions
            conn.execute(
                update(editions)
                .where(editions.c.id == edition_id, editions.c.status == EditionState.open)
                .values(status=EditionState.sending)
            )
        return self._rows(edition_id) - before

    def recipient_stream(
        self,
        list_name: str,
        readers: Readers = EVERY_READER,
        zones: Iterable[Zone] | None = None,
    ) -> Iterator[Subscriber]:
        """The list's current recipients (of the series ``readers`` names) one by one, read
        ``ENQUEUE_BATCH`` at a time (for a dry run over a list of any size); with ``zones``,
        only those in these zones."""
        where = [reads_series(readers)]
        if zones is not None:
            where.append(or_(false(), *(_in_zone(z) for z in zones)))
        with self.engine.connect() as conn:
            for rows in _recipient_batches(conn, list_name, ENQUEUE_BATCH, *where):
                for r in rows:
                    yield Subscriber(
                        id=r.id,
                        email=r.email,
                        name=r.name,
                        lists=(list_name,),
                        sections=_sections_out(r.sections),
                    )

    def _rows(self, edition_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(d.c.edition_id == edition_id)
            ).scalar_one()

    def recover(self, edition_id: int, now: datetime, *, exclusive: bool = True) -> dict[str, int]:
        """After a crash: `sending` rows were never handed over, so they go back to the queue;
        `in_data` rows may have been delivered, so they become `unknown`.

        ``exclusive``: the caller holds the list's run lock, so no live run owns any of the
        edition's rows. Otherwise only the rows of runs whose lease has expired (or that
        never registered) are taken over; live workers keep theirs."""
        orphan = [d.c.edition_id == edition_id]
        if not exclusive:
            orphan.append(or_(d.c.run_id.is_(None), d.c.run_id.not_in(self.live_runs())))
        with self.engine.begin() as conn:
            requeued = conn.execute(
                update(d).where(*orphan, d.c.state == SENDING).values(state=QUEUED, updated_at=now)
            ).rowcount
            unknown = conn.execute(
                update(d)
                .where(*orphan, d.c.state == IN_DATA)
                .values(
                    state=UNKNOWN,
                    updated_at=now,
                    last_code=None,
                    last_reply="interrupted after the message was handed over",
                )
            ).rowcount
        self.reap_workers()
        return {"requeued": requeued, "unknown": unknown}

    def in_flight(self, edition_id: int, *, other_than: str) -> int:
        """Rows of the edition that another run has claimed and not finished."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(
                    d.c.edition_id == edition_id,
                    d.c.state.in_([SENDING, IN_DATA]),
                    d.c.run_id != other_than,
                )
            ).scalar_one()

    def claim(
        self,
        edition_id: int,
        list_name: str,
        limit: int,
        now: datetime,
        run_id: str,
        *,
        resend_unknown: bool = False,
        row_ids: Sequence[int] | None = None,
    ) -> list[Claimed]:
        """Take up to ``limit`` due rows this run has not handled yet (or exactly ``row_ids``,
        for a retry) and mark them `sending`, with each subscriber as of now."""
        due = _due(resend_unknown) if row_ids is None else [DEFERRED]
        query = _claim_query(edition_id, list_name)
        with self.engine.begin() as conn:
            if row_ids is not None:
                rows = conn.execute(
                    query.where(d.c.state.in_(due), d.c.id.in_(list(row_ids))).limit(limit)
                ).all()
            else:
                # One state at a time, queued first: the (edition, state) index then yields
                # the rows in id order and the LIMIT stops the scan. With all due states at
                # once every remaining row is read and sorted per claim, and a run of N
                # rows costs N squared.
                rows = []
                for state in due:
                    # SKIP LOCKED (PostgreSQL): rows another worker is claiming right now are
                    # passed over, not waited for and then found taken.
                    rows += conn.execute(
                        query.where(*self._claimable(state, run_id), *_ripe(now))
                        .limit(limit - len(rows))
                        .with_for_update(of=d, skip_locked=True)
                    ).all()
                    if len(rows) >= limit:
                        break
            if not rows:
                return []
            omitted = _omissions(conn, [r.id for r in rows])
            # Suppressions are matched by hash (erased addresses keep nothing else).
            hashes = {r.id: address_hash(r.email) for r in rows}
            suppressed = set(
                conn.scalars(
                    select(sup.c.address_hash).where(sup.c.address_hash.in_(set(hashes.values())))
                )
            )
            # Only the rows this UPDATE changed are ours: on PostgreSQL (READ COMMITTED) a
            # concurrent claim may have taken some of those read above since.
            taken: dict[int, int] = dict(
                conn.execute(
                    update(d)
                    .where(d.c.id.in_([r.id for r in rows]), d.c.state.in_(due))
                    .values(state=SENDING, attempts=d.c.attempts + 1, run_id=run_id, updated_at=now)
                    .returning(d.c.id, d.c.attempts)
                ).all()
            )
        return [
            Claimed(
                r.id,
                r.subscriber_id,
                _subscriber(r, hashes[r.id] in suppressed, omitted.get(r.id)),
                taken[r.id],
            )
            for r in rows
            if r.id in taken
        ]

    def due_recipients(
        self,
        edition_id: int,
        list_name: str,
        *,
        resend_unknown: bool = False,
        now: datetime | None = None,
    ) -> Iterator[Subscriber | None]:
        """What a run starting now would claim, read without claiming (for a dry run): each
        due row's subscriber as ``claim`` would read it, None for one it would skip (since
        unsubscribed, paused or suppressed). Read ``ENQUEUE_BATCH`` rows at a time. With
        ``now``, only the rows whose moment has come."""
        # As a new run would see them: "" is no run's id.
        claimable = [and_(*self._claimable(state, "")) for state in _due(resend_unknown)]
        query = _claim_query(edition_id, list_name).where(or_(*claimable), *_ripe(now))
        last = 0
        with self.engine.connect() as conn:
            while rows := conn.execute(query.where(d.c.id > last).limit(ENQUEUE_BATCH)).all():
                last = rows[-1].id
                hashes = {r.id: address_hash(r.email) for r in rows}
                suppressed = set(
                    conn.scalars(
                        select(sup.c.address_hash).where(
                            sup.c.address_hash.in_(set(hashes.values()))
                        )
                    )
                )
                omitted = _omissions(conn, [r.id for r in rows])
                for r in rows:
                    yield _subscriber(r, hashes[r.id] in suppressed, omitted.get(r.id))

    def _claimable(self, state: DeliveryState, run_id: str) -> list:
        """Which rows in a due ``state`` ``run_id`` may claim: any queued row; a deferred or
        unknown row unless this run handled it already (it waits for the next run) or a live
        worker did (it is that worker's to retry)."""
        if state is QUEUED:
            return [d.c.state == state]
        return [
            d.c.state == state,
            or_(
                d.c.run_id.is_(None),
                and_(d.c.run_id != run_id, d.c.run_id.not_in(self.live_runs())),
            ),
        ]

    def claimable(
        self,
        edition_id: int,
        run_id: str,
        *,
        resend_unknown: bool = False,
        now: datetime | None = None,
    ) -> bool:
        """Whether ``claim`` would find a row for ``run_id`` now (with ``now``: a row whose
        moment has come)."""
        with self.engine.connect() as conn:
            return any(
                conn.scalar(
                    select(d.c.id)
                    .where(
                        d.c.edition_id == edition_id,
                        *self._claimable(state, run_id),
                        *_ripe(now),
                    )
                    .limit(1)
                )
                is not None
                for state in _due(resend_unknown)
            )

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Commit several state changes in one transaction (the ledger's batched writes)."""
        if outcomes:
            with self.engine.begin() as conn:
                conn.execute(_WRITE, _write_params(outcomes, now))

    def ledger_writer(self, run_id: str | None = None) -> LedgerWriter:
        """A writer holding one connection for a run's many small commits (fenced by the
        claims of ``run_id`` when given)."""
        return LedgerWriter(self.engine, run_id)

    def mark_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        now: datetime,
        *,
        code: int | None = None,
        reply: str | None = None,
        message_id: str | None = None,
    ) -> None:
        self.write([Outcome(delivery_id, state, code, reply, message_id)], now)

    def release(self, run_id: str, now: datetime) -> int:
        """Put back in the queue the rows a stopping run claimed but never handed over."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(d)
                .where(d.c.run_id == run_id, d.c.state == SENDING)
                .values(state=QUEUED, updated_at=now)
            ).rowcount

    def due_count(
        self, edition_id: int, *, resend_unknown: bool = False, now: datetime | None = None
    ) -> int:
        """Rows a run may claim (with ``now``: those whose moment has come)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(
                    d.c.edition_id == edition_id, d.c.state.in_(_due(resend_unknown)), *_ripe(now)
                )
            ).scalar_one()

    def waiting(self, edition_id: int, now: datetime) -> tuple[int, datetime | None]:
        """Queued rows whose moment has not come by ``now``: how many, and the next moment."""
        with self.engine.connect() as conn:
            count, first = conn.execute(
                select(func.count(), func.min(d.c.due_at)).where(
                    d.c.edition_id == edition_id, d.c.state == QUEUED, d.c.due_at > now
                )
            ).one()
        return count, first

    def recipient_zones(self, list_name: str, readers: Readers = EVERY_READER) -> set[Zone]:
        """The zones the list's current recipients (of the series ``readers`` names) chose
        (None: some have none)."""
        with self.engine.connect() as conn:
            return recipient_zones(conn, list_name, readers)

    def sent_since(self, relay: str, since: datetime) -> int:
        """Messages a relay accepted since ``since``, across editions (for hourly limits)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(d.c.relay == relay, d.c.sent_at > since)
            ).scalar_one()

    def hard_bounces(self, subscriber_id: int) -> int:
        """How many deliveries to this subscriber a relay refused as "no such user" (5.1.x)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(
                    d.c.subscriber_id == subscriber_id,
                    d.c.state == FAILED,
                    d.c.last_code >= 500,
                    d.c.last_code < 600,
                    d.c.last_reply.like("5.1.%"),
                )
            ).scalar_one()

    def counts(self, edition_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(d.c.state, func.count())
                .where(d.c.edition_id == edition_id)
                .group_by(d.c.state)
            ).all()
        return {state: n for state, n in rows}

    def latest_errors(self, edition_id: int, limit: int = 5) -> list[tuple[int, str, int, str]]:
        """(subscriber id, state, code, reply) of the latest rows that did not end `sent`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(d.c.subscriber_id, d.c.state, d.c.last_code, d.c.last_reply)
                .where(d.c.edition_id == edition_id, d.c.state.in_(PROBLEM_STATES))
                .order_by(d.c.updated_at.desc(), d.c.id.desc())
                .limit(limit)
            ).all()
        return [tuple(r) for r in rows]

    def edition_errors(self, edition_id: int, limit: int = 10) -> list[dict]:
        """The latest problems of an edition, with addresses, for ``digest status``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    s.c.email, d.c.state, d.c.last_code, d.c.last_reply, d.c.relay, d.c.updated_at
                )
                .join(s, s.c.id == d.c.subscriber_id)
                .where(d.c.edition_id == edition_id, d.c.state.in_(PROBLEM_STATES))
                .order_by(d.c.updated_at.desc(), d.c.id.desc())
                .limit(limit)
            ).all()
        return [
            {
                "email": r.email,
                "state": r.state,
                "code": r.last_code,
                "reply": r.last_reply,
                "relay": r.relay,
                "at": r.updated_at,
            }
            for r in rows
        ]

    def last_activity(self, edition_id: int) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.max(d.c.updated_at)).where(d.c.edition_id == edition_id))


def _subscriber(
    row: Row[*tuple[Any, ...]], suppressed: bool, omit: frozenset[int] | None = None
) -> Subscriber | None:
    # Unsubscribes, bounces and suppressions count from the moment the row is claimed.
    # The same rule as ``SubscriberQueries.deliverable``: active, subscribed, not paused.
    if (
        suppressed
        or row.list_id is None
        or row.status != SubscriberStatus.active.value
        or row.sub_state != "active"
        or row.paused
    ):
        return None
    return Subscriber(
        email=row.email,
        name=row.name,
        sections=_sections_out(row.sections),
        id=row.subscriber_id,
        omit=omit or frozenset(),
    )
