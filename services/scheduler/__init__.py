"""The scheduler: deployment schedules, late runs, expired heartbeats, forced cancellations."""

from services.scheduler.service import run_scheduler
from services.scheduler.tick import TickReport, tick

__all__ = ["TickReport", "run_scheduler", "tick"]
