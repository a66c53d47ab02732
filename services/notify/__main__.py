"""`python -m services.notify`: the notification dispatcher on this installation's Redis."""

from __future__ import annotations

import logging

from services.core.settings import Settings
from services.notify.dispatcher import run_dispatcher


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_dispatcher(Settings())


if __name__ == "__main__":
    main()
