"""The automation format and its pure logic: the Event schema, triggers, actions.

Nothing here does IO: no Redis, no HTTP, no clock (time is passed in).
"""
