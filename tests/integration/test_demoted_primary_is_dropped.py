"""A primary demoted by a failover behind one address (a managed Redis's DNS name) answers
READONLY: the connection is closed so the next try reaches the new primary, and the loop
counts the refusal as an outage to wait out."""

from __future__ import annotations

import pytest
import redis

from services.core.loop import REDIS_OUTAGE_ERRORS


def test_a_readonly_answer_closes_the_connection_and_counts_as_an_outage(
        redis_client: redis.Redis, redis_server) -> None:
    redis_client.set("before", "1")
    admin = redis.Redis(unix_socket_path=str(redis_server.socket))
    try:
        admin.replicaof("127.0.0.1", "1")  # demoted: a replica of a primary that is gone
        with pytest.raises(redis.ReadOnlyError) as refused:
            redis_client.set("during", "1")
        assert isinstance(refused.value, REDIS_OUTAGE_ERRORS)
        pool = redis_client.connection_pool
        assert pool._available_connections, "the refused connection went back to the pool"
        assert all(connection._sock is None for connection in pool._available_connections)
    finally:
        admin.replicaof("NO", "ONE")
    assert redis_client.set("after", "1")
