"""`python -m services.scheduler [--once]`: the scheduler on this installation's Redis."""

from __future__ import annotations

import argparse
import logging

from services.core.settings import Settings
from services.scheduler.service import run_scheduler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.scheduler")
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_scheduler(Settings(), once=args.once)


if __name__ == "__main__":
    main()
