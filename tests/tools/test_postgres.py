"""fleetpatch_dev.postgres: the test server starts, serves over TCP with a password and over its socket, stops, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from fleetpatch_dev import postgres as pg
from fleetpatch_dev.postgres import PostgresServer


def test_a_server_serves_over_tcp_with_a_password_and_leaves_nothing(monkeypatch):
    server = PostgresServer.start(owner_pid=os.getpid())
    try:
        assert server.processes() and server.pid in server.processes()
        assert (server.data / "PG_VERSION").exists() and (pg.REGISTRY / f"{server.base.name}.json").exists()
        server.create_role("app", "app-secret")
        server.create_database("appdb", owner="app")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed|no password supplied"):
            psycopg.connect(server.dsn("app", "appdb"), connect_timeout=5).close()
        monkeypatch.setenv("PGPASSWORD", "app-secret")
        with psycopg.connect(server.dsn("app", "appdb")) as connection:
            assert connection.execute("SELECT current_user, current_database(), inet_server_port()").fetchone() == ("app", "appdb", server.port)
        assert server.execute("SELECT current_user") == [("postgres",)]  # the superuser, over the unix socket
        server.halt()
        assert server.processes() == []
        server.resume()
        assert server.execute("SELECT count(*) FROM pg_database WHERE datname = 'appdb'") == [(1,)]
    finally:
        server.stop()
    assert server.processes() == []
    assert not server.base.exists()
    assert not (pg.REGISTRY / f"{server.base.name}.json").exists()


def test_gc_stops_the_server_of_a_run_that_was_killed():
    owner = subprocess.Popen(["sleep", "60"])  # pylint: disable=consider-using-with
    server = PostgresServer.start(owner_pid=owner.pid)
    try:
        assert pg.gc() == []  # its owner still runs
        owner.kill()
        owner.wait()
        assert pg.gc() == [str(server.base)]
        assert server.processes() == [] and not server.base.exists()
    finally:
        owner.kill()
        server.stop()
