"""`python -m services.worker [OPTIONS]`: an RQ worker, started by the very command
`flowkeeper worker` is (services.cli.process_cmds): same options, same defaults."""

from __future__ import annotations

from services.cli.main import run_process


def main(args: list[str] | None = None) -> None:
    run_process("worker", args)


if __name__ == "__main__":
    main()
