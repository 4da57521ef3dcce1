"""Opening the bridge's database (SQLite by default, PostgreSQL on request) and migrating it.

SQLite runs in WAL mode with ``synchronous=FULL``: a committed event survives a power loss, and
readers (the CLI) never block the daemon's writes. The pysqlite driver is left in its default
transaction mode, where a transaction begins at its first write: every write transaction then
takes SQLite's write lock through ``busy_timeout`` instead of failing with "database is locked"
when a read transaction tries to upgrade after another writer committed.

Alembic is imported inside the functions that need it, so that reading the call log does not pay
for it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from microsip_bridge.errors import BridgeError
from microsip_bridge.store import DB_NAME as DB_NAME
from microsip_bridge.store import SQLITE_BUSY_TIMEOUT_MS
from microsip_bridge.store.schema import events, metadata
from microsip_bridge.wire import bridge_home

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = "microsip_bridge.store:migrations"
PG_CONNECT_TIMEOUT_S = 10
# Any fixed 64-bit number: PostgreSQL's advisory lock that serialises concurrent upgrades.
_PG_MIGRATION_LOCK = 0x6D73_625F_6D69_6772
_PG_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_URL_HINT = "expected sqlite:///PATH or postgresql://USER@HOST/DATABASE"
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def default_url(home: Path | None = None) -> URL:
    """The URL of the default database: ``bridge.db`` in the bridge's home."""
    folder = bridge_home() if home is None else home
    # Built, not parsed: a home folder may hold '?', '#' or '%', which a URL string would
    # take for a query.
    return URL.create("sqlite", database=str(folder.resolve() / DB_NAME))


def make_engine(url: str | None = None, home: Path | None = None) -> Engine:
    """An engine for ``url`` (``sqlite:///...`` or ``postgresql://...``), or for the default
    SQLite file in ``home`` (default: the bridge's home, created if missing; ``home`` is not
    used when ``url`` is given).

    A plain ``postgresql://`` (or ``postgres://``) URL gets the psycopg 3 driver. Raises
    :class:`BridgeError` for a URL that is malformed or names another database or driver. The
    engine connects lazily: a server that is down shows up at the first use.
    """
    if url is None:
        folder = bridge_home() if home is None else home
        try:
            # 0700: the call log is personal data.
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise BridgeError(
                f"cannot create the data folder: {exc.strerror}", path=folder
            ) from None
        return _sqlite_engine(default_url(folder))
    parsed = parse_url(url)
    if parsed.drivername.startswith("sqlite"):
        return _sqlite_engine(parsed)
    return _postgresql_engine(parsed)


def parse_url(url: str) -> URL:
    """``url`` parsed and checked, with the psycopg driver named for PostgreSQL."""
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        raise BridgeError(f"not a database URL: {_shown(url)!r}; {_URL_HINT}") from None
    driver = parsed.drivername
    if driver in _PG_DRIVERS:
        if not parsed.database:
            raise BridgeError(f"the database URL names no database: {safe_url(parsed)}")
        return parsed.set(drivername="postgresql+psycopg")
    if driver in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite")
    raise BridgeError(f"unsupported database {driver!r} in {safe_url(parsed)}; {_URL_HINT}")


def safe_url(url: URL | str) -> str:
    """The URL as text with its password masked, for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _shown(url)


def _shown(url: str) -> str:
    return _PASSWORD.sub(r"\1***@", url.strip())[:200]


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if not in_memory and not url.query.get("uri"):
        folder = Path(database).parent
        if not folder.is_dir():
            raise BridgeError("the database folder does not exist", path=folder)
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, TypeError) as exc:
        raise BridgeError(f"cannot open {safe_url(url)}: {_first_line(exc)}") from None
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a moment of exclusive access.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on power loss, and a
        # hook event acknowledged to MicroSIP's hook must not be lost.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _postgresql_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    # Defaults only: what the user wrote in the URL's query wins.
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = "microsip-bridge"
    try:
        # pre_ping: the daemon lives longer than a server restart or an idle-connection reaper.
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError:
        raise BridgeError(
            f"PostgreSQL needs the psycopg driver (pip install 'psycopg[binary]'): {safe_url(url)}"
        ) from None
    except (ArgumentError, NoSuchModuleError, TypeError) as exc:
        raise BridgeError(f"cannot open {safe_url(url)}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def database_error(engine: Engine, exc: DBAPIError) -> BridgeError:
    """A one-line :class:`BridgeError` for a driver error on ``engine``'s database."""
    return BridgeError(f"database error on {safe_url(engine.url)}: {_first_line(exc)}")


def open_log(url: str | None, home: Path) -> Engine | None:
    """An engine on the call log at ``url`` (None: ``bridge.db`` in ``home``), or None when
    there is no call log there yet (no file, or no tables: the daemon creates them at its first
    start). A reader creates nothing."""
    if url is None and not (home / DB_NAME).is_file():
        return None
    engine = make_engine(url, home)
    try:
        if not inspect(engine).has_table(events.name):
            engine.dispose()
            return None
    except DBAPIError as exc:
        engine.dispose()
        raise database_error(engine, exc) from None
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection to read with, whose driver errors become one-line BridgeErrors."""
    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise database_error(engine, exc) from None


def alembic_config(stdout: TextIO | None = None) -> Config:
    """An Alembic configuration built in code for the migrations shipped in the package.

    Alembic's messages, and the SQL script of ``--sql`` mode, go to ``stdout``, by default
    nowhere: library code does not print. (Passing it also avoids Alembic's default, the
    ``sys.stdout`` of the moment Alembic was first imported, which may be closed by now.)
    """
    from alembic.config import Config

    out = io.StringIO() if stdout is None else stdout
    config = Config(stdout=out, output_buffer=out)
    config.set_main_option("script_location", MIGRATIONS)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), in one transaction.

    Safe to call at every start and from several processes at once: the migration holds
    SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock, so a second
    process waits and then finds nothing left to do. Raises :class:`BridgeError` when the
    database cannot be reached or the migration fails.
    """
    from alembic import command

    config = alembic_config()
    try:
        with engine.begin() as conn:
            _lock_for_migration(conn)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except DBAPIError as exc:
        raise database_error(engine, exc) from None


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # With pysqlite's default transaction handling no transaction is open yet: this one
        # makes the DDL atomic and waits (busy_timeout) for other writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (``None``: not initialised)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise database_error(engine, exc) from None


def head_revision() -> str:
    """The newest migration shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise BridgeError("the package ships no database migrations")
    return head


def schema_diffs(engine: Engine) -> list[Any]:
    """What differs between the database and :data:`~microsip_bridge.store.schema.metadata`,
    as Alembic's autogenerate sees it (``alembic check``): empty when the migrations build
    exactly the schema the code expects."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))
