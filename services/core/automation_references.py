"""What an automation names that does not exist: the deployments and notifiers of its
actions, and the Prefect ids an import left unmapped (automations.prefect_ids), so that
`automation apply` refuses an automation whose action would fail."""

from __future__ import annotations

from collections.abc import Callable

from automations.errors import FieldError
from automations.prefect_ids import unmapped_placeholders
from automations.schema import NOTIFICATION_ACTIONS, AutomationCore, RunDeployment


def missing_references(spec: AutomationCore, *, notifier_exists: Callable[[str], bool],
                       deployment_exists: Callable[[str], bool]) -> list[FieldError]:
    """A FieldError per deployment, notifier or Prefect placeholder that names nothing."""
    # a placeholder names something only if the user created a deployment or notifier
    # under that very name; anywhere else (a trigger's resource id) it matches no event
    problems = unmapped_placeholders(spec.model_dump(mode="json"), lambda found: (
        found.kind == "deployment" and deployment_exists(found.name)) or (
        found.kind == "block" and notifier_exists(found.name)))
    flagged = {problem.path for problem in problems}
    for where, index, action in spec.all_actions():
        path = f"{where}[{index}]"
        if isinstance(action, RunDeployment) and action.deployment is not None:
            if f"{path}.deployment" not in flagged and not deployment_exists(action.deployment):
                problems.append(FieldError(f"{path}.deployment",
                                           f"no deployment named '{action.deployment}'"))
        elif isinstance(action, NOTIFICATION_ACTIONS):
            notifier = getattr(action, "notifier", None)
            if notifier and f"{path}.notifier" not in flagged and not notifier_exists(notifier):
                problems.append(FieldError(f"{path}.notifier", f"no notifier named '{notifier}'"))
    return problems
