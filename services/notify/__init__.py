"""Notifications, the services half: named notifier configurations (secrets encrypted at
rest), the delivery pipeline (dedup, silences, grouping, rate limit, send, retry or
dead-letter, record), silences, the outbox, and the dispatcher that hands what is due
to the notify workers.

The library half (channels, message, policy, templates) is the `notifiers` package.
Modules are imported by what uses them; this package imports nothing on its own:
  actions      deliver_action (what the engine's action job calls)
  delivery     Deliveries: the pipeline (process), resend, send_test
  dispatcher   tick, run_dispatcher (retries, rate-limited messages, group flushes),
               deliver_due (the notify workers' job for a due delivery)
  configs      NotifierStore (create, list, get, delete, resolve)
  silences     SilenceStore;  outbox  Outbox;  records  Notifications
"""
