"""The actions of firings, as the workers carry them out: run control (cancel, suspend,
resume, retry, change state, run a deployment, pause or resume an automation) on the RQ
`control` queue, notifications on `notify` through the delivery pipeline (services.notify).

The engine records a firing and enqueues one job per action
(`services.core.queues.ACTION_JOB`, which names `executor.run_action`); this package is
what that job runs.
"""
