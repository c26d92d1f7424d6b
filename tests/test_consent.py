"""The consent policy, tried by random sequences of what operators, readers, files and returned
mail do to subscribers, against a small model of the policy written out here on its own.

After every step, who the next `digest send` would mail (the store's recipient query that
sending uses) must be exactly who the model says; at the end of each sequence the ledger of a
real edition is filled and compared too. Runs on SQLite and PostgreSQL (the ``db_url``
fixture), through the pipeline functions the CLI and the web edge call.
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import re
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import pipeline
from digest.audience import policy
from digest.audience.tokens import make_token, read_token
from digest.config import load_newsletter, load_settings
from digest.errors import SubscriberError
from digest.models import Edition
from digest.store import open_store
from tests.support.newsletters import TWO_LISTS, two_list_config
from tests.support.values import NOW, ROOT, SECRET

ADDRESSES = ["a@example.com", "b@example.com"]
WORDS = {
    "active": ("active", False),
    "paused": ("active", True),
    "unsubscribed": ("unsubscribed", False),
    "pending": ("pending", False),
}


# -- the model --------------------------------------------------------------------------------


@dataclass
class Person:
    status: str
    lists: dict[str, list] = field(default_factory=dict)  # list -> [state, paused]


@dataclass
class Model:
    people: dict[str, Person] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)
    tokens: list[tuple[str, str, str]] = field(default_factory=list)  # address, list, token
    used: set[str] = field(default_factory=set)

    def mailed(self, list_name: str) -> set[str]:
        return {
            a
            for a, p in self.people.items()
            if p.status == "active"
            and a not in self.suppressed
            and p.lists.get(list_name, ["", True])[0] == "active"
            and not p.lists[list_name][1]
        }

    def standing(self, address: str, list_name: str) -> str:
        person = self.people.get(address)
        if address in self.suppressed or (person and person.status in ("bounced", "complained")):
            return "suppressed"
        if person is None or (list_name not in person.lists and person.status == "active"):
            return "new"
        if person.status in ("pending", "unsubscribed"):
            return person.status
        if list_name not in person.lists:
            return "unsubscribed"
        return person.lists[list_name][0]

    def settle(self, person: Person) -> None:
        # Leaving the last list leaves the newsletter.
        if person.status == "active" and not any(s == "active" for s, _ in person.lists.values()):
            person.status = "unsubscribed"

    # Each action: what the policy allows, nothing more.

    def add(self, address: str, lists: list[str]) -> None:
        if address in self.suppressed:
            return
        person = self.people.get(address)
        if person is None:
            self.people[address] = Person("active", {n: ["active", False] for n in lists})
            return
        pending = [n for n in lists if self.standing(address, n) == "pending"]
        for n in pending:
            person.lists.setdefault(n, ["active", False])[0] = "active"
        if pending:
            person.status = "active"

    def import_row(self, address: str, status: str, lists: dict[str, str], update: bool) -> None:
        if address in self.suppressed:
            return  # a suppressed address is a rejected row
        if address not in self.people:
            self.people[address] = Person(status, {n: list(WORDS[w]) for n, w in lists.items()})
            if status in ("bounced", "complained"):
                self.suppressed[address] = status
            return
        if status == "active":
            self.add(address, [n for n, w in lists.items() if WORDS[w][0] == "active"])
        person = self.people[address]
        if update and person.status == "active":  # an active subscriber joins new lists
            for n, w in lists.items():
                person.lists.setdefault(n, list(WORDS[w]))

    def unsubscribe(self, address: str, list_name: str | None) -> None:
        person = self.people.get(address)
        if person is None:
            return
        if list_name is None:
            for entry in person.lists.values():
                entry[0] = "unsubscribed"
            if person.status in ("active", "pending"):
                person.status = "unsubscribed"
        elif list_name in person.lists:
            person.lists[list_name][0] = "unsubscribed"
            self.settle(person)

    def resubscribe(self, address: str, list_name: str | None, force: bool) -> None:
        person = self.people.get(address)
        if person is None:
            return
        names = [list_name] if list_name else list(person.lists)
        if not names or any(n not in person.lists for n in names):
            return
        if self.standing(address, names[0]) == "suppressed" and not force:
            return
        self.suppressed.pop(address, None)
        for n in names:
            person.lists[n] = ["active", False]
        person.status = "active"

    def preferences(self, address: str, list_name: str, paused: bool | None) -> None:
        person = self.people.get(address)
        if person is None or list_name not in person.lists:
            return
        if paused is not None:
            person.lists[list_name][1] = paused
        self.settle(person)

    def returned(self, address: str, kind: str) -> None:
        person = self.people.get(address)
        if person is None:
            return
        person.status = "bounced" if kind == "bounce" else "complained"
        self.suppressed.setdefault(address, kind)

    def sign_up(self, address: str, list_name: str) -> bool:
        """Whether a confirmation is mailed."""
        if address in self.suppressed:
            return False
        person = self.people.setdefault(address, Person("pending"))
        person.lists.setdefault(list_name, ["pending", False])
        return True

    def confirm(self, address: str, list_name: str, token: str) -> None:
        if token in self.used or address in self.suppressed:
            return
        self.used.update(t for a, n, t in self.tokens if (a, n) == (address, list_name))
        person = self.people[address]
        person.lists[list_name] = ["active", False]
        person.status = "active"


# -- the steps --------------------------------------------------------------------------------

address = st.sampled_from(ADDRESSES)
one_list = st.sampled_from(TWO_LISTS)
some_lists = st.lists(one_list, min_size=1, max_size=2, unique=True)
STEPS = st.one_of(
    st.tuples(st.just("add"), address, some_lists),
    st.tuples(
        st.just("import"),
        address,
        st.sampled_from(["active", "unsubscribed", "pending", "bounced", "complained"]),
        st.dictionaries(one_list, st.sampled_from(list(WORDS)), min_size=1),
        st.booleans(),
    ),
    st.tuples(st.just("unsubscribe"), address, st.none() | one_list),
    st.tuples(st.just("resubscribe"), address, st.none() | one_list, st.booleans()),
    st.tuples(
        st.just("prefs"), address, one_list, st.sampled_from(["sections", "all", "pause", "resume"])
    ),
    st.tuples(st.just("export-import"), st.sampled_from(["csv", "json"])),
    st.tuples(st.just("returned"), address, st.sampled_from(["bounce", "complaint"])),
    st.tuples(st.just("web-unsubscribe"), address, one_list),
    st.tuples(st.just("web-preferences"), address, one_list, st.booleans()),
    st.tuples(st.just("web-resubscribe"), address, one_list),
    st.tuples(st.just("sign-up"), address, one_list),
    st.tuples(st.just("confirm"), st.integers(min_value=0, max_value=5)),
)


class Run:
    """One sequence of steps on the real pipeline, mirrored in the model."""

    def __init__(self, ctx: pipeline.Context, folder):
        self.ctx, self.folder, self.model = ctx, folder, Model()
        self.now = NOW
        self.seen_mail: set[str] = set()

    def sid(self, address_: str) -> int | None:
        record = self.ctx.store.record(address_)
        return record.id if record else None

    def web_reader(self, address_: str, list_name: str, purpose: str):
        sid = self.sid(address_)
        if sid is None:
            return None
        return pipeline.reader(
            self.ctx, make_token(SECRET.encode(), sid, list_name, purpose), purpose
        )

    def step(self, step: tuple) -> None:
        self.now += timedelta(minutes=11)  # past the sign-up form's quiet time
        # A refusal: the model must agree that nothing changed.
        with contextlib.suppress(SubscriberError):
            self._real(step)
        self._model(step)

    def _real(self, step: tuple) -> None:
        ctx, now, kind = self.ctx, self.now, step[0]
        if kind == "add":
            pipeline.add_subscriber(ctx, {"email": step[1], "lists": ";".join(step[2])}, now)
        elif kind == "import":
            lists = ";".join(f"{n}:{w}" for n, w in step[3].items())
            path = self.folder / "rows.csv"
            path.write_text(f"email,status,lists\n{step[1]},{step[2]},{lists}\n")
            pipeline.import_subscribers(ctx, path, now, update=step[4])
        elif kind == "unsubscribe":
            pipeline.unsubscribe(ctx, step[1], step[2], now)
        elif kind == "resubscribe":
            pipeline.resubscribe(ctx, step[1], step[2], now, force=step[3])
        elif kind == "prefs":
            change = {
                "sections": {"sections": "launch-pad"},
                "all": {"sections": "all"},
                "pause": {"paused": True},
                "resume": {"paused": False},
            }[step[3]]
            pipeline.set_preferences(ctx, step[1], step[2], now, **change)
        elif kind == "export-import":
            self._export_import(step[1] == "json")
        elif kind == "returned":
            sid = self.sid(step[1])
            if sid is not None:
                action = policy.Action.bounce if step[2] == "bounce" else policy.Action.complaint
                pipeline.mark_returned(ctx, sid, action, now)
        elif kind == "web-unsubscribe":
            found = self.web_reader(step[1], step[2], "unsubscribe")
            if found is not None:
                pipeline.unsubscribe(ctx, found.record.email, found.list_name, now)
        elif kind == "web-preferences":
            found = self.web_reader(step[1], step[2], "preferences")
            if found is not None:
                pipeline.save_web_preferences(
                    ctx,
                    found.record.email,
                    found.list_name,
                    now,
                    chosen=["launch-pad", "drone-space"],
                    pause=step[3],
                )
        elif kind == "web-resubscribe":
            found = self.web_reader(step[1], step[2], "preferences")
            if found is not None:
                pipeline.resubscribe(ctx, found.record.email, found.list_name, now)
        elif kind == "sign-up":
            # As the web edge does: the request queues it, the server's mailer mails it.
            pipeline.request_subscription(ctx, step[1], "", step[2], None, now, "192.0.2.1")
            asyncio.run(pipeline.send_confirmations(ctx, now))
            self._collect_tokens()
        elif kind == "confirm" and self.model.tokens:
            _address, _list, token = self.model.tokens[-1 - step[1] % len(self.model.tokens)]
            pipeline.confirm_subscription(ctx, token, now, "192.0.2.1")

    def _model(self, step: tuple) -> None:
        m, kind = self.model, step[0]
        if kind == "add":
            m.add(step[1], step[2])
        elif kind == "import":
            m.import_row(step[1], step[2], step[3], step[4])
        elif kind == "unsubscribe":
            m.unsubscribe(step[1], step[2])
        elif kind == "resubscribe":
            m.resubscribe(step[1], step[2], step[3])
        elif kind == "prefs":
            m.preferences(step[1], step[2], {"pause": True, "resume": False}.get(step[3]))
        elif kind == "returned":
            m.returned(step[1], step[2])
        elif kind == "web-unsubscribe":
            if step[2] in getattr(m.people.get(step[1]), "lists", {}):
                m.unsubscribe(step[1], step[2])
        elif kind == "web-preferences":
            m.preferences(step[1], step[2], step[3])
        elif kind == "web-resubscribe":
            if step[2] in getattr(m.people.get(step[1]), "lists", {}):
                m.resubscribe(step[1], step[2], False)
        elif kind == "sign-up":
            m.sign_up(step[1], step[2])
        elif kind == "confirm" and m.tokens:
            m.confirm(*m.tokens[-1 - step[1] % len(m.tokens)])

    def _collect_tokens(self) -> None:
        box = mailbox.Maildir(self.folder / "outbox", create=False)
        for key in sorted(set(box.keys()) - self.seen_mail):
            self.seen_mail.add(key)
            raw = box.get_bytes(key)
            to = re.search(rb"^To: (.+?)\r?$", raw, re.M).group(1).decode()
            token = re.search(rb"/c/([A-Za-z0-9_-]+)", raw).group(1).decode()
            _request, list_name = read_token(SECRET.encode(), token, "confirm")
            self.model.tokens.append((to, list_name, token))

    def _export_import(self, json_lines: bool) -> None:
        path = self.folder / ("all.jsonl" if json_lines else "all.csv")
        with open(path, "w", encoding="utf-8", newline="") as fh:
            pipeline.export_subscribers(self.ctx, fh, json_lines=json_lines)
        result = pipeline.import_subscribers(self.ctx, path, self.now, force=True)
        assert (result.added, result.changes, result.rejected) == (0, [], [])

    def check(self) -> None:
        for name in TWO_LISTS:
            got = {s.email for s in self.ctx.store.recipient_stream(name)}
            assert got == self.model.mailed(name), (name, self.model)

    def check_ledger(self, number: int) -> None:
        from sqlalchemy import text

        for name in TWO_LISTS:
            edition = self.ctx.store.create_edition(
                Edition(
                    list_name=name,
                    key=f"2026-12-{number % 28 + 1:02d}-{number}",
                    created_at=self.now,
                    sections=(),
                )
            )
            self.ctx.store.enqueue_list(edition.id, name, self.now)
            with self.ctx.store.engine.connect() as conn:
                ids = set(
                    conn.execute(
                        text("SELECT subscriber_id FROM deliveries WHERE edition_id = :e"),
                        {"e": edition.id},
                    ).scalars()
                )
            assert ids == {self.sid(a) for a in self.model.mailed(name)}, (name, self.model)


def _wipe(store) -> None:
    from sqlalchemy import text

    with store.engine.begin() as conn:
        for table in (
            "deliveries",
            "edition_articles",
            "editions",
            "bounces",
            "signups",
            "confirmations",
            "subscriptions",
            "subscribers",
            "suppressions",
        ):
            conn.execute(text(f"DELETE FROM {table}"))


def test_the_next_send_reaches_exactly_whom_the_consent_policy_allows(tmp_path, db_url):
    config = two_list_config(tmp_path)
    app_settings = load_settings(
        config=config,
        database_url=db_url,
        secret_key=SECRET,
        base_url="https://news.example.com",
        outbox=tmp_path / "outbox",
    )
    newsletter = load_newsletter(config)
    store = open_store(db_url)
    store.ensure_lists((lst.name, lst.title) for lst in newsletter.lists)
    ctx = pipeline.Context(app_settings, newsletter, store)
    examples = iter(range(10**6))

    @settings(
        max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.lists(STEPS, min_size=1, max_size=20))
    def sequence(steps):
        _wipe(store)
        run = Run(ctx, tmp_path)
        run.seen_mail = set(mailbox.Maildir(tmp_path / "outbox", create=True).keys())
        for step in steps:
            run.step(step)
            run.check()
        run.check_ledger(next(examples))

    try:
        sequence()
    finally:
        store.close()


def test_the_policy_table_is_complete_and_only_its_four_doors_make_anyone_active():
    doors = {
        policy.Action.add,
        policy.Action.resubscribe,
        policy.Action.resubscribe_force,
        policy.Action.confirm,
    }
    for before, row in policy.TABLE.items():
        assert set(row) == set(policy.Action)
        for action, after in row.items():
            if after is policy.Standing.active and before is not policy.Standing.active:
                assert action in doors, (before, action)
    for action in (policy.Action.preferences, policy.Action.add):
        assert policy.after(policy.Standing.unsubscribed, action) is policy.Standing.unsubscribed
    assert policy.after(policy.Standing.suppressed, policy.Action.resubscribe) is None
    assert policy.after(policy.Standing.suppressed, policy.Action.confirm) is None


def test_the_table_in_docs_subscribers_md_is_the_codes():
    text = (ROOT / "docs" / "subscribers.md").read_text()
    lines = [
        ln
        for ln in text.splitlines()
        if ln.startswith("| standing |") or re.match(r"\| \*\*\w+\*\* \|", ln)
    ]
    header = [c.strip().strip("`") for c in lines[0].strip("|").split("|")][1:]
    documented = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        documented[cells[0].strip("*")] = dict(zip(header, cells[1:], strict=True))
    in_code = {
        before.value: {
            action.value: "refused" if after is None else after.value
            for action, after in row.items()
        }
        for before, row in policy.TABLE.items()
    }
    assert documented == in_code
