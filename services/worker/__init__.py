"""The worker: runs deployments' flow runs as RQ jobs (one forked work horse per job)."""

from services.worker.runner import FlowWorker, run_worker

__all__ = ["FlowWorker", "run_worker"]
