"""The process identity's lock on a real PostgreSQL (adapters/postgres/process_lock.py) after its connection broke
under a live engine: the server ends the holder's session (pg_terminate_backend, as a server restart or a network cut
does) and frees the lock. Nobody took it meanwhile: the holder's next check takes it again on a new connection and
still holds it. Another took it first: the holder finds its identity lost. The server not answering is no loss, nor
is the holder's own old session that the server has not yet ended (the network cut on the holder's side only).
No Docker host: PostgreSQL only (`redis-addons serve` losing its identity: test_identity_lost_serve_postgres.py)."""

from __future__ import annotations

import socket
import threading

import pytest

from adapters.data_lock import FileDataLock
from adapters.postgres.connection import connection_options
from adapters.postgres.process_lock import PostgresProcessLock, ProcessIdentityInUse, lock_key
from engine.settings import store_env
from tests.postgres_server import free_port

IDENTITY = "machine-1:/srv/a"


@pytest.fixture
def database(postgres, tmp_path):
    """(connection options, database name) of a fresh database."""
    env = postgres.new_database("identity")
    return connection_options(store_env(env, tmp_path)), env["REDIS_ADDONS_POSTGRES_DBNAME"]


@pytest.fixture
def locks(database, tmp_path):
    """PostgresProcessLock(home) of IDENTITY on the database, each with a data directory of its own; all released."""
    made = []

    def lock(home: str) -> PostgresProcessLock:
        made.append(PostgresProcessLock(database[0], IDENTITY, FileDataLock(tmp_path / home)))
        return made[-1]

    yield lock
    for each in made:
        each.release()


def holding_session(postgres, dbname: str) -> int | None:
    """The server process of the session holding IDENTITY's lock, as any client sees it in pg_locks."""
    rows = postgres.psql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                         f"((classid::bigint << 32) | objid::bigint) = {lock_key(IDENTITY)}", dbname).split()
    return int(rows[0]) if rows else None


def end_session(postgres, dbname: str, session: int) -> None:
    assert postgres.psql(f"SELECT pg_terminate_backend({session}, 10000)", dbname).strip() == "t"  # gone, lock freed


def test_a_lock_whose_connection_was_ended_is_taken_again_when_nobody_took_it(postgres, database, locks):
    options, dbname = database
    holder = locks("a")
    holder.acquire()
    holder.announce("http://127.0.0.1:8470")
    assert holder.still_held()
    first = holding_session(postgres, dbname)
    end_session(postgres, dbname, first)
    assert holding_session(postgres, dbname) is None  # the server freed it with the session
    assert holder.still_held()  # taken again at once on a new connection
    assert holding_session(postgres, dbname) not in (None, first)
    assert holder.still_held()
    with pytest.raises(ProcessIdentityInUse, match=r"is in use by another redis-addons engine .*API "
                                                   r"http://127\.0\.0\.1:8470"):  # recorded again with its API
        locks("b").acquire()


def test_a_lock_taken_by_another_while_its_connection_was_down_is_lost(postgres, database, locks):
    options, dbname = database
    holder, other = locks("a"), locks("b")
    holder.acquire()
    end_session(postgres, dbname, holding_session(postgres, dbname))
    other.acquire()  # before the holder's next check
    assert not holder.still_held() and not holder.still_held()  # lost, and stays lost
    assert other.still_held()
    other.release()
    assert not holder.still_held()  # released by the other: still not this one's (its engine stopped driving)



def test_a_lock_freed_between_the_try_and_the_look_at_its_holder_is_no_loss(postgres, database, locks):
    """The other holder (or this process's old session) ends just after the holder's try failed: nobody holds it
    when the holder looks who does. Not lost: taken at the next check."""
    options, dbname = database
    holder, other = locks("a"), locks("b")
    holder.acquire()
    end_session(postgres, dbname, holding_session(postgres, dbname))
    other.acquire()
    look = holder._holding_session

    def other_gone_first(connection, mine=False):
        if not mine:
            other.release()
        return look(connection, mine)

    holder._holding_session = other_gone_first
    assert holder.still_held() and holding_session(postgres, dbname) is None
    holder._holding_session = look
    assert holder.still_held() and holding_session(postgres, dbname) is not None
    with pytest.raises(ProcessIdentityInUse):
        locks("c").acquire()


def test_a_server_that_does_not_answer_is_no_loss_and_the_lock_is_taken_again_once_it_answers(postgres, database,
                                                                                              locks):
    options, dbname = database
    holder = locks("a")
    holder.acquire()
    end_session(postgres, dbname, holding_session(postgres, dbname))
    holder.options = {**options, "port": str(free_port())}  # its server gone: nothing answers there
    assert holder.still_held() and holding_session(postgres, dbname) is None  # no loss: asked again next time
    holder.options = options  # the server back
    assert holder.still_held() and holding_session(postgres, dbname) is not None
    with pytest.raises(ProcessIdentityInUse):
        locks("b").acquire()


class CuttableLink:
    """A loopback TCP relay to PostgreSQL whose clients' side can be cut while the server's side stays open: the
    client sees its connection broken, the server does not yet (as when the network is cut near the client)."""

    def __init__(self, port: int):
        self.upstream_port, self.pairs = port, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.pairs.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # either side closed by cut() or close()

    def cut(self) -> None:
        """The clients' sides closed; the server's sides left open, unaware."""
        for client, _ in self.pairs:
            client.close()

    def close(self) -> None:
        self.listener.close()
        for client, server in self.pairs:
            client.close()
            server.close()


def test_the_holders_own_old_session_not_yet_ended_by_the_server_is_no_loss(postgres, database, tmp_path):
    options, dbname = database
    link = CuttableLink(int(options["port"]))
    holder = PostgresProcessLock({**options, "host": "127.0.0.1", "port": str(link.port)}, IDENTITY,
                                 FileDataLock(tmp_path / "a"))
    try:
        holder.acquire()
        old = holding_session(postgres, dbname)
        link.cut()
        assert holder.still_held()  # its connection broken, its old session still holds the lock: no loss
        assert holding_session(postgres, dbname) == old
        end_session(postgres, dbname, old)  # the server finds the old session gone at last
        assert holder.still_held() and holding_session(postgres, dbname) not in (None, old)  # taken again
    finally:
        holder.release()
        link.close()
