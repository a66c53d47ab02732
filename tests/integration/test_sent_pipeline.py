"""SentPipeline (services/core/pipelined.py) against a private Redis: the replies
`Pipeline.execute` gives, errors raised once every reply is read, and a connection
that never carries a stray reply to its next user."""

from __future__ import annotations

import pytest
import redis

from services.core.pipelined import SentPipeline


def _mixed_commands(pipe: redis.client.Pipeline) -> None:
    pipe.set("sent:a", "1")
    pipe.incr("sent:a")
    pipe.get("sent:a")
    pipe.hset("sent:h", mapping={"x": "1", "y": "2"})
    pipe.hgetall("sent:h")  # a response callback makes the dict
    pipe.xadd("sent:s", {"f": "v"}, id="1-1")
    pipe.xrange("sent:s")
    pipe.eval("return {KEYS[1], ARGV[1]}", 1, "k", "v")
    pipe.zadd("sent:z", {"m": 1.5})
    pipe.zrange("sent:z", 0, -1, withscores=True)  # options reach the callback


@pytest.mark.parametrize("transaction", [False, True])
def test_replies_are_those_of_execute(redis_client, transaction):
    expected_pipe = redis_client.pipeline(transaction=transaction)
    _mixed_commands(expected_pipe)
    expected = expected_pipe.execute()
    redis_client.flushdb()

    pipe = redis_client.pipeline(transaction=transaction)
    _mixed_commands(pipe)
    sent = SentPipeline(pipe)
    assert redis_client.get("never-set") is None  # other work while it runs
    assert sent.replies() == expected
    assert expected[4] == {"x": "1", "y": "2"}
    assert expected[9] == [("m", 1.5)]


def test_an_explicit_transaction_runs_whole(redis_client):
    pipe = redis_client.pipeline(transaction=False)
    pipe.multi()
    pipe.set("sent:t", "1")
    pipe.incr("sent:t")
    assert SentPipeline(pipe).replies() == [True, 2]


def test_a_failing_command_is_raised_after_every_reply_is_read(redis_client):
    redis_client.set("sent:string", "x")
    pipe = redis_client.pipeline(transaction=False)
    pipe.set("sent:before", "1")
    pipe.lpush("sent:string", "y")  # WRONGTYPE
    pipe.set("sent:after", "1")
    sent = SentPipeline(pipe)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        sent.replies()
    # the commands after the error ran, and the connection carries no stray reply
    assert redis_client.mget("sent:before", "sent:after") == ["1", "1"]
    assert [redis_client.ping() for _ in range(3)] == [True, True, True]


def test_a_transaction_refused_at_queueing_runs_nothing(redis_client):
    pipe = redis_client.pipeline(transaction=True)
    pipe.set("sent:queued", "1")
    pipe.execute_command("NO-SUCH-COMMAND")
    sent = SentPipeline(pipe)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        sent.replies()
    assert redis_client.get("sent:queued") is None
    assert redis_client.ping()


def test_a_connection_lost_before_the_replies_raises_and_is_not_reused(redis_client):
    pipe = redis_client.pipeline(transaction=False)
    pipe.set("sent:before-quit", "1")
    pipe.execute_command("QUIT")  # the server answers, then closes the connection
    pipe.get("sent:before-quit")  # never answered
    sent = SentPipeline(pipe)
    with pytest.raises(redis.ConnectionError):
        sent.replies()
    # the pool hands out working connections afterwards, none of them the closed one
    assert len(redis_client.connection_pool._in_use_connections) == 0
    assert [redis_client.ping() for _ in range(3)] == [True, True, True]
    assert redis_client.get("sent:before-quit") == "1"


def test_discard_returns_the_connection_without_reading(redis_client):
    pool = redis_client.connection_pool
    pipe = redis_client.pipeline(transaction=False)
    pipe.set("sent:discarded", "1")
    sent = SentPipeline(pipe)
    in_use = len(pool._in_use_connections)
    sent.discard()
    assert len(pool._in_use_connections) == in_use - 1
    assert sent.replies() == []  # nothing left to read
    assert redis_client.ping()


def test_replies_give_the_connection_back(redis_client):
    pool = redis_client.connection_pool
    pipe = redis_client.pipeline(transaction=False)
    pipe.set("sent:back", "1")
    sent = SentPipeline(pipe)
    assert len(pool._in_use_connections) == 1
    sent.replies()
    assert len(pool._in_use_connections) == 0


def test_an_empty_pipeline_sends_nothing(redis_client):
    assert SentPipeline(redis_client.pipeline()).replies() == []


def test_a_pipeline_holding_a_script_object_is_refused(redis_client):
    script = redis_client.register_script("return 1")
    pipe = redis_client.pipeline(transaction=False)
    script(client=pipe)
    with pytest.raises(ValueError, match="EVAL with the script's text"):
        SentPipeline(pipe)
