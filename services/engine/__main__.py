"""`python -m services.engine [OPTIONS]`: one engine replica, started by the very command
`flowkeeper engine` is (services.cli.process_cmds): same options, same defaults."""

from __future__ import annotations

from services.cli.main import run_process


def main(args: list[str] | None = None) -> None:
    run_process("engine", args)


if __name__ == "__main__":
    main()
