"""A pipeline sent now and answered later: its commands go out at once on a connection
held for it, and its replies are read when the caller needs them, so that the caller
works while Redis runs them (the engine evaluates its next batch while Redis
acknowledges the last one).

Implementation notes:
- [1] `Pipeline.execute` sends and reads in one call. `SentPipeline` does the same two
  halves with redis-py's public pieces: the connection pool, `pack_commands` and
  `send_packed_command` to send, the pipeline's `parse_response` (its response
  callbacks) to read, and `raise_first_error` to report, as `execute` does. A
  transaction (`pipe.multi()`, or a pipeline made with `transaction=True`) is sent
  between MULTI and EXEC, and its replies are EXEC's, through the same callbacks.
- [2] Order: Redis runs one connection's commands in the order sent, but reads a large
  request in parts and serves other connections in between. So nothing that depends
  on these commands may be sent on another connection before `replies()` returns: the
  caller reads the replies before its next dependent command, not merely after.
- [3] The connection is the sender's until the replies are read (or `discard`ed), then
  goes back to the pool; one that failed half way is disconnected first, so that no
  unread reply is left on it for the next user. There is no retry: a pipeline sent
  twice could run twice, and the callers' own redelivery covers a lost one.
- [4] Scripts go as EVAL with their text (services/engine/buckets.py [6]): a pipeline
  holding `Script` objects (EVALSHA) is refused, as their loading is a round trip of
  its own.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import ExecAbortError, ResponseError


class SentPipeline:
    """`pipe`'s commands, sent on construction; `replies()` reads what they returned [1]."""

    def __init__(self, pipe: Pipeline) -> None:
        if pipe.scripts:
            raise ValueError("a sent pipeline takes EVAL with the script's text, not a Script [4]")
        self._pipe = pipe
        self._commands = list(pipe.command_stack)
        self._transaction = bool(pipe.transaction or pipe.explicit_transaction)
        self._pool = pipe.connection_pool
        self._connection: redis.connection.AbstractConnection | None = None
        if not self._commands:
            return
        wire = [args for args, _ in self._commands]
        if self._transaction:
            wire = [("MULTI",), *wire, ("EXEC",)]
        connection = self._pool.get_connection()
        self._connection = connection
        try:
            connection.send_packed_command(connection.pack_commands(wire))
        except BaseException:
            self.discard()
            raise

    def replies(self) -> list[Any]:
        """Each command's reply, in order; raises the first command's error, as
        `Pipeline.execute` does, once every reply is read [3]."""
        connection, self._connection = self._connection, None
        if connection is None:
            return []
        try:
            replies = (self._transaction_replies(connection) if self._transaction
                       else self._pipeline_replies(connection))
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._pool.release(connection)
        self._pipe.raise_first_error(self._commands, replies)
        return replies

    def discard(self) -> None:
        """Give the connection back without reading the replies (it is disconnected: the
        commands may or may not have run)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.disconnect()
            self._pool.release(connection)

    def _pipeline_replies(self, connection: Any) -> list[Any]:
        replies: list[Any] = []
        for args, options in self._commands:
            try:
                replies.append(self._pipe.parse_response(connection, args[0], **options))
            except ResponseError as error:
                replies.append(error)
        return replies

    def _transaction_replies(self, connection: Any) -> list[Any]:
        parse = self._pipe.parse_response
        errors: list[tuple[int, ResponseError]] = []
        try:
            parse(connection, "_")  # MULTI's OK
        except ResponseError as error:
            errors.append((0, error))
        for position in range(len(self._commands)):  # each QUEUED
            try:
                parse(connection, "_")
            except ResponseError as error:
                errors.append((position, error))
        try:
            executed = parse(connection, "_")
        except ExecAbortError:
            if errors:
                raise errors[0][1] from None
            raise
        for position, error in errors:
            executed.insert(position, error)
        replies = []
        for reply, (args, options) in zip(executed, self._commands, strict=True):
            name = args[0]
            if not isinstance(reply, Exception) and name in self._pipe.response_callbacks:
                options = {key: value for key, value in options.items() if key != "keys"}
                reply = self._pipe.response_callbacks[name](reply, **options)
            replies.append(reply)
        return replies
