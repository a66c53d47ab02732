"""Every Redis key flowkeeper uses, built in one place under the configured prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix, so several installations can share a Redis."""

    prefix: str = "flowkeeper"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- the event stream
    @property
    def events(self) -> str:
        return self._k("events")

    @property
    def events_dead(self) -> str:
        return self._k("events", "dead")

    # --- flow runs
    @property
    def flow_runs(self) -> str:
        """Sorted set of every flow run id, scored by creation time."""
        return self._k("flow-runs")

    def flow_run(self, run_id: str) -> str:
        return self._k("flow-run", run_id)

    def flow_run_history(self, run_id: str) -> str:
        return self._k("flow-run", run_id, "history")

    def flow_run_tasks(self, run_id: str) -> str:
        """Hash of task run id -> task run record (JSON)."""
        return self._k("flow-run", run_id, "task-runs")

    def flow_run_edges(self, run_id: str) -> str:
        """Set of 'upstream>downstream' task run id pairs: the task graph."""
        return self._k("flow-run", run_id, "edges")

    def flow_run_logs(self, run_id: str) -> str:
        return self._k("flow-run", run_id, "logs")

    def flow_run_artifacts(self, run_id: str) -> str:
        return self._k("flow-run", run_id, "artifacts")

    def flow_run_subflows(self, run_id: str) -> str:
        return self._k("flow-run", run_id, "subflows")

    @property
    def heartbeats(self) -> str:
        """Sorted set of running flow run ids scored by heartbeat deadline (epoch s)."""
        return self._k("heartbeats")

    @property
    def scheduled_runs(self) -> str:
        """Sorted set of Scheduled/Pending flow run ids scored by due time (epoch s)."""
        return self._k("scheduled-runs")

    @property
    def cancelling_runs(self) -> str:
        """Sorted set of Cancelling flow run ids scored by the end of their grace period."""
        return self._k("cancelling-runs")

    def run_lineage(self, root_run_id: str) -> str:
        """Counter of retries made in one lineage of runs."""
        return self._k("lineage", root_run_id, "retries")

    # --- deployments and schedules
    @property
    def deployments(self) -> str:
        """Hash of deployment name -> deployment record (JSON)."""
        return self._k("deployments")

    def schedule_slot(self, deployment: str, due_epoch: int) -> str:
        """Claimed by the one scheduler that creates the run due at that time."""
        return self._k("schedule", deployment, str(due_epoch))

    def schedule_cursor(self, deployment: str) -> str:
        """The due time up to which a deployment's schedule has been expanded."""
        return self._k("schedule", deployment, "cursor")

    # --- caches and leases
    def lease(self, name: str) -> str:
        return self._k("lease", name)
