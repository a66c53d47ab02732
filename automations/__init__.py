"""The automation format and its pure logic: the Event schema, triggers, actions.

Nothing here does IO: no Redis, no HTTP, no clock (time is passed in).

- `events`: the Event schema;
- `schema`: the automation (`AutomationCreate`, `Automation`, `AutomationPublic`), with
  the triggers (`triggers`) and the action catalogue (`actions`);
- `matching`: label and event-name matching (wildcards, negation), with reasons;
- `evaluation` and `state`: trigger evaluation over a small stored state (`BucketState`);
- `loading`: JSON files and text to validated automations, errors with field paths;
- `prefect_import`: Prefect automations and deployment triggers to ours;
- `explain` and `backtest`: why an automation fired or not for a run, and what it
  would have done over past events; `history`: run durations for adaptive windows;
- `templates`: rendering templated action fields in a sandbox; `locate`: the line
  of a field in a JSON file, for error messages;
- `errors`: the package's errors; `examples/`: automations that ship.
"""
