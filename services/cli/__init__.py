"""The `flowkeeper` command line (typer + rich).

Heavy libraries (redis, pydantic-settings, fastapi, rq, pandas, ...) are
imported inside the commands that use them, so that `flowkeeper --help`
starts about as fast as a bare interpreter.
"""
