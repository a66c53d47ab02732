"""`python -m services.worker [--queue NAME ...] [--burst] [--name NAME]`."""

from __future__ import annotations

import argparse
import logging

from services.core.settings import Settings
from services.worker.entrypoints import add_start_folder_to_path
from services.worker.runner import run_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.worker")
    parser.add_argument("--queue", "-q", action="append", dest="queues", default=[],
                        help="a work queue to listen on (repeat for several; default: default)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="the worker's name (default: a random id)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    add_start_folder_to_path()
    run_worker(Settings(), args.queues, burst=args.burst, name=args.name)


if __name__ == "__main__":
    main()
