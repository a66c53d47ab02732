"""The automation format and its pure logic: the Event schema, triggers, actions.

Nothing here does IO: no Redis, no HTTP, no clock (time is passed in).

- `events`: the Event schema;
- `schema`: the automation (`AutomationCreate`, `Automation`, `AutomationPublic`), with
  the triggers (`triggers`) and the action catalogue (`actions`);
- `matching`: label and event-name matching (wildcards, negation), with reasons;
- `evaluation` and `state`: trigger evaluation over a small stored state (`BucketState`);
- `loading`: JSON files and text to validated automations, errors with field paths;
- `prefect_import`: Prefect automations and deployment triggers to ours;
- `errors`: the package's errors; `examples/`: automations that ship.
"""
