"""Whether the `taxi` extra is installed, asked before anything of the taxi flow runs.

`pip install flowkeeper` gives the services and the SDK; pandas, pyarrow,
scikit-learn, XGBoost and MLflow come with `pip install 'flowkeeper[taxi]'`.
The commands and the flow that need them call `require_taxi_extra()` first, so
a lean installation answers with what to install instead of a traceback from
deep inside pandas. The check only looks the modules up: it imports none.
"""

from __future__ import annotations

import importlib.util

from services.core.errors import FlowkeeperError

# the import names of what the extra installs, in pyproject's order
TAXI_MODULES = ("numpy", "pandas", "pyarrow", "sklearn", "xgboost", "mlflow")
INSTALL_HINT = "pip install 'flowkeeper[taxi]'"


class MissingTaxiExtra(FlowkeeperError):
    """The taxi flow's libraries are not installed (a FlowkeeperError: the CLI prints it)."""


def missing_taxi_modules() -> list[str]:
    """The import names of the extra's libraries that cannot be found, in TAXI_MODULES order."""
    return [name for name in TAXI_MODULES if not _installed(name)]


def require_taxi_extra(what: str = "this") -> None:
    """Raise MissingTaxiExtra naming `what` needs it and how to install it, if anything is missing."""
    missing = missing_taxi_modules()
    if missing:
        raise MissingTaxiExtra(f"{what} needs the taxi extra: {INSTALL_HINT} "
                               f"({', '.join(missing)} not installed)")


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # an import hook refused it; a half-imported module
        return False
