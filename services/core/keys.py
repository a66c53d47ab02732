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

    def flow_run_firings(self, run_id: str) -> str:
        """Sorted set of 'automation id|firing id' of the firings about a run, scored by
        firing time: the run's page reads them without scanning every automation."""
        return self._k("flow-run", run_id, "firings")

    def flow_run_notifications(self, run_id: str) -> str:
        """Sorted set of the ids of the notifications about a run, scored by creation."""
        return self._k("flow-run", run_id, "notifications")

    def flow_runs_by(self, facet: str, value: str) -> str:
        """Sorted set of the flow run ids of one state, flow, deployment or tag, scored by
        creation time, like `flow_runs` (the runs page's filters: services/core/run_index).
        One hash tag: a filter intersects several of them in one command."""
        return self._k("{run-index}", facet, value)

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

    def run_enqueue_claim(self, run_id: str) -> str:
        """Claimed (SET NX) by the one process that enqueues a scheduled run's job."""
        return self._k("flow-run", run_id, "enqueued")

    def run_idempotency(self, deployment: str, idempotency_key: str) -> str:
        """The id of the run created for one idempotency key of a deployment."""
        return self._k("idempotency", deployment, idempotency_key)

    # --- deployments and schedules
    @property
    def deployments(self) -> str:
        """Hash of deployment name -> deployment record (JSON)."""
        return self._k("deployments")

    def deployment_runs(self, deployment: str) -> str:
        """Sorted set of a deployment's newest flow run ids, scored by creation time."""
        return self._k("deployment", deployment, "runs")

    def schedule_slot(self, deployment: str, due_epoch: int) -> str:
        """Claimed by the one scheduler that creates the run due at that time."""
        return self._k("schedule", deployment, str(due_epoch))

    def schedule_cursor(self, deployment: str) -> str:
        """The due time up to which a deployment's schedule has been expanded."""
        return self._k("schedule", deployment, "cursor")

    # --- automations (every multi-key update touches one hash slot: see the hash tags)
    @property
    def automations(self) -> str:
        """Hash of automation id -> automation record (JSON)."""
        return self._k("{automations}", "all")

    @property
    def automation_names(self) -> str:
        """Hash of automation name -> id (names are unique)."""
        return self._k("{automations}", "names")

    @property
    def automations_version(self) -> str:
        """Counter incremented by every change of an automation: engines poll it."""
        return self._k("{automations}", "version")

    def bucket_state(self, automation_id: str, bucket: str) -> str:
        """The trigger state of one bucket (`bucket`: a digest of fingerprint and key)."""
        return self._k("auto", "{" + automation_id + ":" + bucket + "}", "state")

    def bucket_outbox(self, automation_id: str, bucket: str) -> str:
        """Firings written with a bucket's state, until they are recorded and enqueued."""
        return self._k("auto", "{" + automation_id + ":" + bucket + "}", "outbox")

    def bucket_fired(self, automation_id: str, bucket: str, firing_key: str) -> str:
        """Set (NX) once per firing of a bucket: a redelivered event never fires twice."""
        return self._k("auto", "{" + automation_id + ":" + bucket + "}", "fired", firing_key)

    @property
    def bucket_deadlines(self) -> str:
        """Sorted set of 'automation|fingerprint|bucket' scored by deadline (epoch s)."""
        return self._k("auto-deadlines")

    def automation_firings(self, automation_id: str) -> str:
        """Sorted set of an automation's firing ids scored by firing time (epoch s)."""
        return self._k("auto", "{" + automation_id + "}", "firings")

    def automation_firing(self, automation_id: str, firing_id: str) -> str:
        """Hash of one firing: its record and the outcome of each action."""
        return self._k("auto", "{" + automation_id + "}", "firing", firing_id)

    def automation_stats(self, automation_id: str) -> str:
        """Hash of an automation's firing count and last firing time (epoch s)."""
        return self._k("auto", "{" + automation_id + "}", "stats")

    def action_lease(self, automation_id: str, firing_id: str, index: int) -> str:
        """Held (SET NX PX) while one action of a firing is carried out."""
        return self._k("auto", "{" + automation_id + "}", "action", firing_id, str(index),
                       "lease")

    def action_done(self, automation_id: str, firing_id: str, index: int) -> str:
        """Set once one action of a firing was carried out: a redelivered job skips it."""
        return self._k("auto", "{" + automation_id + "}", "action", firing_id, str(index),
                       "done")

    def evaluation_trace(self, resource_id: str) -> str:
        """Capped list of the engine's evaluation steps for events of one resource."""
        return self._k("trace", resource_id)

    def run_durations(self, scope: str, name: str) -> str:
        """Sorted set of '<run id>:<duration s>' of completed runs of a deployment or flow,
        scored by completion time (the newest few kept)."""
        return self._k("durations", scope, name)

    # --- API tokens (a name and its record change together: one hash tag)
    @property
    def api_tokens(self) -> str:
        """Hash of token hash (SHA-256, hex) -> token record (JSON); never the token itself."""
        return self._k("{tokens}", "by-hash")

    @property
    def api_token_names(self) -> str:
        """Hash of token name -> token hash (names are unique)."""
        return self._k("{tokens}", "names")

    # --- workers and work queues (services.core.workers)
    def worker_presence(self, name: str) -> str:
        """A live worker's record (JSON), expiring unless the worker renews it."""
        return self._k("worker", name, "presence")

    @property
    def workers(self) -> str:
        """Hash of worker name -> record (JSON) of every worker announced and not stopped."""
        return self._k("workers")

    @property
    def queue_readiness(self) -> str:
        """Hash of work queue -> its last announced readiness (JSON)."""
        return self._k("work-queues", "readiness")

    # --- the web pages' sessions (services/core/web_sessions)
    def web_session(self, session_id: str) -> str:
        """Hash of one browser session: the token it was opened with, scope, CSRF token."""
        return self._k("web", "session", session_id)

    def web_signin_code(self, code: str) -> str:
        """A single-use sign-in code (`/signin?code=...`): the token hash it signs in as."""
        return self._k("web", "signin-code", code)

    # --- caches and leases
    def lease(self, name: str) -> str:
        return self._k("lease", name)

    # --- metrics
    def metric(self, name: str) -> str:
        """Hash of label values -> count of one metric, added to by every process."""
        return self._k("metrics", name)

    # --- notifications (one hash tag: each delivery step is one MULTI/EXEC on one slot)
    @property
    def notifiers(self) -> str:
        """Hash of notifier name -> stored configuration (secrets encrypted)."""
        return self._k("{notify}", "notifiers")

    @property
    def notifiers_version(self) -> str:
        """Counter incremented by every change of a stored notifier configuration."""
        return self._k("{notify}", "notifiers-version")

    def notification(self, notification_id: str) -> str:
        """One notification: its message, where it goes, and each delivery step (JSON)."""
        return self._k("{notify}", "notification", notification_id)

    @property
    def notifications(self) -> str:
        """Sorted set of recent notification ids scored by creation time (epoch s)."""
        return self._k("{notify}", "recent")

    @property
    def notifications_due(self) -> str:
        """Sorted set of notification ids scored by the time of their next attempt."""
        return self._k("{notify}", "due")

    @property
    def notifications_dead(self) -> str:
        """Sorted set of dead-lettered notification ids scored by when they died."""
        return self._k("{notify}", "dead")

    def notification_key(self, idempotency_key: str) -> str:
        """The id of the notification made for one idempotency key (SET NX)."""
        return self._k("{notify}", "key", idempotency_key)

    def notification_lease(self, notification_id: str) -> str:
        """Held (SET NX PX) while one delivery step of a notification runs."""
        return self._k("{notify}", "notification", notification_id, "lease")

    def notification_done(self, notification_id: str) -> str:
        """Set once a notification reached a final outcome: a redelivery skips it."""
        return self._k("{notify}", "notification", notification_id, "done")

    @property
    def outbox(self) -> str:
        """Capped list of the messages the outbox notifier kept (newest first)."""
        return self._k("{notify}", "outbox")

    @property
    def silences(self) -> str:
        """Hash of silence id -> silence (JSON)."""
        return self._k("{notify}", "silences")

    def notification_group(self, group_id: str) -> str:
        """The state of one notification group (JSON)."""
        return self._k("{notify}", "group", group_id)

    @property
    def notification_groups_due(self) -> str:
        """Sorted set of group ids scored by their next flush time (epoch s)."""
        return self._k("{notify}", "groups-due")

    def notifier_tokens(self, notifier: str) -> str:
        """The token bucket of one notifier's rate limit (JSON)."""
        return self._k("{notify}", "tokens", notifier)
