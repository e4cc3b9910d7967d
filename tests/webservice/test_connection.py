"""client_gone: is the client of a request still there? Real loopback TCP sockets."""

from __future__ import annotations

import socket

import pytest

from webservice.connection import client_gone


@pytest.fixture
def connection():
    """(the client's socket, the server's end of it)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_end, _ = listener.accept()
    yield client, server_end
    client.close()
    server_end.close()


def test_a_client_still_connected_is_there(connection):
    client, server_end = connection
    assert not client_gone({"gunicorn.socket": server_end})
    client.sendall(b"POST /predict HTTP/1.1\r\n")  # bytes waiting to be read change nothing
    assert not client_gone({"gunicorn.socket": server_end})


def test_a_client_that_closed_is_gone_even_with_its_request_unread(connection):
    """A frozen server finds its queued requests still readable, their clients long gone."""
    client, server_end = connection
    client.sendall(b"POST /predict HTTP/1.1\r\nContent-Length: 3\r\n\r\nimg")
    client.close()
    assert client_gone({"gunicorn.socket": server_end})


def test_without_gunicorns_socket_every_client_is_there():
    assert not client_gone({})  # Flask's test client, another server
