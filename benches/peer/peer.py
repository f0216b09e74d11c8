"""The eventsourcing side of the peer comparison (issue 11).

    python peer.py all --single N1 --batch N2 --dir D
    python peer.py selftest --dir D

`all` runs the workload of benches/peer/README.md against Python eventsourcing 9.5.6 on
SQLite and prints one JSON line: {"single":rate,"batch":rate,"replay":rate,"events":n}.
`selftest` shows that the rules below refuse what eduledger refuses, and exits non-zero if
any is let through.

The model is what a Python shop would write with eventsourcing: a `Kindergarten` and a
`Teacher` aggregate, each "registered" event creating one, and an `Application` whose
command methods check the rules and save. Every `save` is one SQLite transaction in WAL
mode with synchronous=FULL, so one fsync of the WAL per commit (checkpoints add their own).

What `register_teacher` checks, against eduledger's `register_teacher`
(crates/domain/src/decide.rs and rules/teachers.rs):

- the home kindergarten exists: eduledger resolves the name in its in-memory state; here the
  Kindergarten aggregate is loaded from the event store by its id (uuid5 of the name) with
  `repository.get`, a SELECT and a replay of its events per command (once per kindergarten
  per batch in `register_teachers`). Not found -> refused.
- the teacher is registered on or after the kindergarten's registration day (eduledger's
  `kg_alive`): checked against the loaded aggregate.
- the staff number is not registered yet: the Teacher's id is uuid5 of the staff number, so a
  second registration is a second version-1 event for the same aggregate, and SQLite's
  primary key (originator_id, originator_version) refuses it at commit: the way
  eventsourcing's documentation makes a name unique. A duplicate inside a batch fails the
  batch's transaction, so nothing of the batch is recorded, as in eduledger.
- field formats, as eduledger's value types check them at parse: a staff number of 1 to 32
  ASCII letters, digits, '-' or '_'; names of 1 to 40 (kindergarten) or 200 (text)
  characters without surrounding spaces, control characters or '、'; an ISO date.

Not checked here (eduledger does it, and it costs it time): the re-check that a recorded
event reads back as decided, the metadata/size limits of a command, the hash chain written
with every event and checked on replay. Neither side re-checks the other invariants of
rules/teachers.rs (rotations, titles, leaving service): a fresh registration has none.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sqlite3
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import eventsourcing.sqlite as es_sqlite
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

KGS = ["甲", "乙", "丙", "丁", "戊", "己"]
BATCH = 1000
ON = "2023-09-01"

# --- durability --------------------------------------------------------------------------
# eventsourcing 9.5.6 (eventsourcing/sqlite.py, SQLiteConnectionPool._create_connection)
# puts a file database in WAL mode on its first connection and sets no other pragma, so
# `synchronous` is whatever this SQLite was compiled with (SQLITE_DEFAULT_WAL_SYNCHRONOUS:
# FULL in upstream SQLite, NORMAL in some builds, and NORMAL in WAL mode does not fsync at
# commit). `synchronous` is per connection, so every connection the pool opens is set to
# FULL here, and the pragmas are printed once (stderr) to show what was in effect.
_create_connection = es_sqlite.SQLiteConnectionPool._create_connection


def _create_durable_connection(
    self: es_sqlite.SQLiteConnectionPool,
) -> es_sqlite.SQLiteConnection:
    conn = _create_connection(self)
    conn.cursor().execute("PRAGMA synchronous=FULL;")
    return conn


es_sqlite.SQLiteConnectionPool._create_connection = _create_durable_connection  # type: ignore[method-assign]


class DomainError(Exception):
    """A command broke a rule; nothing was recorded."""


# --- values (what eduledger's value types check at parse) -------------------------------
_STAFF_NO = re.compile(r"[A-Za-z0-9_-]{1,32}")


def staff_no(text: str) -> str:
    if not isinstance(text, str) or not _STAFF_NO.fullmatch(text):
        raise DomainError(
            f"staff number {text!r} must be 1 to 32 ASCII letters, digits, '-' or '_'"
        )
    return text


def one_line(kind: str, text: str, max_chars: int) -> str:
    if not isinstance(text, str) or not 0 < len(text) <= max_chars:
        raise DomainError(f"{kind} {text!r} must be 1 to {max_chars} characters")
    if text.strip() != text:
        raise DomainError(f"{kind} {text!r} must not start or end with spaces")
    if any(c == "、" or not c.isprintable() for c in text):
        raise DomainError(f"{kind} {text!r} must not contain control characters or 、")
    return text


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise DomainError(f"{text!r} is not a date (YYYY-MM-DD)") from None


# --- the model ---------------------------------------------------------------------------
class Kindergarten(Aggregate):
    @event("Registered")
    def __init__(self, name: str, category: str, ownership: str, on: date) -> None:
        self.name = name
        self.category = category
        self.ownership = ownership
        self.registered = on

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/kindergartens/{name}")


class Teacher(Aggregate):
    @event("Registered")
    def __init__(self, staff_no: str, name: str, home: UUID, on: date) -> None:
        self.staff_no = staff_no
        self.name = name
        self.home = home
        self.registered = on

    @staticmethod
    def create_id(staff_no: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/teachers/{staff_no}")


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class Bureau(Application):
    """The district's ledger of kindergartens and teachers."""

    log_section_size = 1000

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def register_kindergartens(self, commands: Iterable[dict[str, Any]]) -> None:
        """Register kindergartens, all in one transaction."""
        self._save(
            *(
                Kindergarten(
                    name=one_line("kindergarten name", c["kindergarten"], 40),
                    category=c["category"],
                    ownership=c["ownership"],
                    on=day(c["on"]),
                )
                for c in commands
            )
        )

    def register_teacher(self, command: dict[str, Any]) -> None:
        """Register one teacher: its own transaction (one durable commit)."""
        self._save(self._decide_teacher(command, self._kindergarten))

    def register_teachers(self, commands: list[dict[str, Any]]) -> None:
        """Register teachers, all or none, in one transaction (one durable commit)."""
        loaded: dict[str, Kindergarten] = {}

        def kindergarten(name: str) -> Kindergarten:
            if name not in loaded:
                loaded[name] = self._kindergarten(name)
            return loaded[name]

        self._save(*(self._decide_teacher(c, kindergarten) for c in commands))

    def _kindergarten(self, kg_name: str) -> Kindergarten:
        try:
            return self.repository.get(Kindergarten.create_id(kg_name))
        except AggregateNotFoundError:
            raise DomainError(f"no kindergarten is named {kg_name!r}") from None

    @staticmethod
    def _decide_teacher(
        command: dict[str, Any], kindergarten: Callable[[str], Kindergarten]
    ) -> Teacher:
        on = day(command["on"])
        home = kindergarten(one_line("kindergarten name", command["home"], 40))
        if on < home.registered:
            raise DomainError(
                f"kindergarten {home.name} was registered on {home.registered}, after {on}"
            )
        return Teacher(
            staff_no=staff_no(command["staff_no"]),
            name=one_line("text", command["name"], 200),
            home=home.id,
            on=on,
        )

    def _save(self, *aggregates: Aggregate) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            # only a second "registered" event for an existing id conflicts
            raise DomainError(
                "a staff number (or kindergarten name) is already registered; "
                "nothing was recorded"
            ) from None


# --- the workload ------------------------------------------------------------------------
def open_app(db: Path) -> Bureau:
    return Bureau(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
    )


def pragmas(app: Bureau) -> dict[str, Any]:
    with app.recorder.datastore.transaction(commit=False) as c:
        out = {}
        for p in ("journal_mode", "synchronous", "wal_autocheckpoint", "page_size"):
            c.execute(f"PRAGMA {p};")
            out[p] = c.fetchone()[0]
    return out


def teacher_line(i: int) -> str:
    # byte for byte the JSON command line crates/ledger/examples/peer.rs parses
    return (
        f'{{"command":"register_teacher","staff_no":"T{i}","name":"教师{i}",'
        f'"home":"{KGS[i % 6]}","on":"{ON}"}}'
    )


def setup(app: Bureau) -> None:
    app.register_kindergartens(
        {
            "command": "register_kindergarten",
            "kindergarten": k,
            "category": "first_class",
            "ownership": "public",
            "on": ON,
        }
        for k in KGS
    )


def replay(db: Path) -> tuple[float, int, dict[str, Any]]:
    """Reopen and rebuild a read model from every stored event: teachers per kindergarten."""
    t = perf_counter()
    app = open_app(db)
    kindergartens: dict[UUID, str] = {}
    teachers: dict[str, tuple[str, UUID, date]] = {}
    by_home: dict[UUID, set[str]] = defaultdict(set)
    n = 0
    start = 1
    while True:
        page = app.notification_log.select(start, app.log_section_size)
        for notification in page:
            e = app.mapper.to_domain_event(notification)
            if isinstance(e, Teacher.Registered):
                teachers[e.staff_no] = (e.name, e.home, e.on)
                by_home[e.home].add(e.staff_no)
            elif isinstance(e, Kindergarten.Registered):
                kindergartens[e.originator_id] = e.name
            else:
                raise RuntimeError(f"unexpected event {type(e).__qualname__}")
            n += 1
        if len(page) < app.log_section_size:
            break
        start = page[-1].id + 1
    elapsed = perf_counter() - t
    app.close()
    model = {
        "kindergartens": len(kindergartens),
        "teachers": len(teachers),
        "per_kindergarten": sorted(len(s) for s in by_home.values()),
    }
    return elapsed, n, model


def run_all(single: int, batch: int, work: Path) -> dict[str, Any]:
    db = work / "peer.sqlite"
    if db.exists():
        raise SystemExit(f"{db} exists: give a fresh --dir")
    app = open_app(db)
    setup(app)
    print(
        f"eventsourcing {version('eventsourcing')}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, pragmas {json.dumps(pragmas(app))}",
        file=sys.stderr,
    )

    t = perf_counter()
    for i in range(single):
        app.register_teacher(json.loads(teacher_line(i)))
    single_rate = single / (perf_counter() - t)

    t = perf_counter()
    for lo in range(single, single + batch, BATCH):
        hi = min(lo + BATCH, single + batch)
        app.register_teachers([json.loads(teacher_line(i)) for i in range(lo, hi)])
    batch_rate = batch / (perf_counter() - t)
    app.close()

    elapsed, n, model = replay(db)
    expected = len(KGS) + single + batch
    if n != expected or model["teachers"] != single + batch:
        raise RuntimeError(f"replay found {n} events and {model}; expected {expected}")
    return {
        "single": round(single_rate, 1),
        "batch": round(batch_rate, 1),
        "replay": round(n / elapsed, 1),
        "events": n,
    }


def selftest(work: Path) -> int:
    """Show that what eduledger refuses is refused here, and that a refused batch leaves nothing."""
    db = work / "selftest.sqlite"
    if db.exists():
        raise SystemExit(f"{db} exists: give a fresh --dir")
    app = open_app(db)
    setup(app)
    app.register_teacher(json.loads(teacher_line(1)))
    refused = {
        "unknown home": lambda: app.register_teacher(
            {"staff_no": "X1", "name": "某", "home": "无此园", "on": ON}
        ),
        "duplicate staff no": lambda: app.register_teacher(json.loads(teacher_line(1))),
        "before the kindergarten": lambda: app.register_teacher(
            {"staff_no": "X2", "name": "某", "home": "甲", "on": "2020-01-01"}
        ),
        "bad staff no": lambda: app.register_teacher(
            {"staff_no": "T 9", "name": "某", "home": "甲", "on": ON}
        ),
        "duplicate inside a batch": lambda: app.register_teachers(
            [json.loads(teacher_line(i)) for i in (2, 3, 2)]
        ),
        "batch with a recorded staff no": lambda: app.register_teachers(
            [json.loads(teacher_line(i)) for i in (4, 1)]
        ),
    }
    failures = 0
    for what, attempt in refused.items():
        try:
            attempt()
        except DomainError as e:
            print(f"refused as it should be: {what}: {e}")
        else:
            print(f"NOT REFUSED: {what}")
            failures += 1
    recorded = app.recorder.max_notification_id()
    if recorded != len(KGS) + 1:
        print(f"a refused command left events behind: {recorded} recorded")
        failures += 1
    else:
        print(f"nothing of the refused commands was recorded ({recorded} events)")
    app.close()
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", nargs="?", default="all", choices=["all", "selftest"])
    p.add_argument("--single", type=int, default=2000)
    p.add_argument("--batch", type=int, default=50000)
    p.add_argument(
        "--dir", type=Path, default=None, help="work directory (default: a temp one)"
    )
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="peer-es-") as tmp:
        work = a.dir if a.dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.phase == "selftest":
            return selftest(work)
        print(
            json.dumps(run_all(a.single, a.batch, work), separators=(",", ":")),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
