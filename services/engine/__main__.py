"""`python -m services.engine [--consumer NAME]`: one engine replica on this
installation's Redis."""

from __future__ import annotations

import argparse
import logging

from services.core.settings import Settings
from services.engine.service import run_engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.engine")
    parser.add_argument("--consumer", help="this replica's name in the consumer group "
                                           "(default: host and process id)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_engine(Settings(), consumer=args.consumer)


if __name__ == "__main__":
    main()
