"""`flowkeeper demo`: the taxi training flow and three automation stories, put on with
the demo's own flows (flows.py) and automations (automations/*.json, package data).

  session   DemoSession, StoryResult, the demo's names, waiting with a live line
  scenes    the set-up, the training run and the summaries
  stories   the automation stories (a stuck run, a failed run, repeated failures)
  verdicts  pure judgments of what a story saw
  runner    run_demo: the scenes in order, then cleanup

Only the CLI imports this package (a contract in pyproject says so); the workers import
its flows by the entrypoints the demo registers (`services.demo.flows:...`).
"""
