"""Importing what a real Prefect workspace exports: ids everywhere, several automations at
once, and the maps (ours, or Prefect's own listings) that resolve the ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from automations.errors import InvalidAutomation, MalformedDocument
from automations.prefect_batch import file_name, file_names, placeholder_summary, report_rows
from automations.prefect_ids import listing_kind, placeholders_in, unmapped_placeholders
from automations.prefect_import import import_prefect_documents
from automations.schema import AutomationCreate
from services.core.automation_files import read_id_map

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prefect"
LISTINGS = [FIXTURES / "deployments.json", FIXTURES / "work_queues.json",
            FIXTURES / "blocks.json"]
DEPLOYMENT_ID = "d0e1f2a3-1111-4111-8111-abcdefabcdef"
WORK_QUEUE_ID = "4e5f6a7b-4444-4444-8444-0000000000aa"


def exported() -> list:
    return json.loads((FIXTURES / "automations.json").read_text())


def test_a_workspace_export_converts_everything_but_cloud_only_triggers():
    results = import_prefect_documents(exported())

    assert [r.status for r in results] == ["placeholders", "placeholders", "placeholders",
                                           "converted", "converted", "refused"]
    assert report_rows(results)[2].reason == "Prefect ids to map: block, work-queue (listed below)"
    assert report_rows(results)[5].reason == ("trigger: metric triggers are Prefect Cloud's; "
                                              "flowkeeper has none")
    retrain = results[1].automation
    assert retrain.actions[0].deployment == f"prefect-deployment-{DEPLOYMENT_ID}"
    queue = results[2].automation
    assert queue.trigger.match == {"resource.id": f"work-queue.prefect-work-queue-{WORK_QUEUE_ID}"}
    assert queue.trigger.expect == ["work-queue.not-ready"]
    # every converted automation, placeholders included, validates against our schema
    for result in results[:5]:
        AutomationCreate.model_validate(result.automation.to_document())


def test_the_summary_lists_each_id_once_with_the_map_line_to_write():
    summary = placeholder_summary(import_prefect_documents(exported()))

    assert len(summary) == 5  # the deployment is named by two automations, listed once
    assert (f"{DEPLOYMENT_ID}: <deployment name>  # now prefect-deployment-{DEPLOYMENT_ID}"
            in summary)


def test_an_automation_of_the_batch_named_by_id_resolves_to_its_converted_name():
    pool_down = import_prefect_documents(exported())[3].automation

    assert pool_down.actions[0].automation == "Retrain-when-new-data-lands"
    assert pool_down.trigger.triggers[0].match == {"resource.id": "work-queue.*"}
    assert pool_down.trigger.triggers[0].expect == ["work-queue.not-ready"]


def test_with_prefects_listings_and_a_map_no_placeholder_is_left():
    names = read_id_map([FIXTURES / "map.yaml"], LISTINGS)
    results = import_prefect_documents(exported(), names=names)

    assert [r.status for r in results] == ["converted"] * 5 + ["refused"]
    assert placeholder_summary(results) == []
    notify, retrain, queue = (r.automation for r in results[:3])
    assert notify.trigger.match_related[1] == {"resource.role": "deployment",
                                               "resource.id": ["deployment.taxi-training"]}
    assert notify.actions[0].notifier == "team-email"
    assert retrain.actions[0].deployment == "taxi-training"
    assert queue.trigger.match == {"resource.id": "work-queue.training"}
    assert queue.actions[0].notifier == "ops-slack"


def test_prefect_listings_are_told_apart_by_their_fields():
    kinds = [listing_kind(json.loads(path.read_text())[0]) for path in LISTINGS]

    assert kinds == ["deployment", "work-queue", "block"]
    assert listing_kind({"id": DEPLOYMENT_ID, "name": "taxi", "tags": []}) == "flow"
    assert listing_kind({"id": DEPLOYMENT_ID, "name": "x", "state": "Failed"}) is None


def test_a_bad_map_entry_is_named_with_its_file(tmp_path):
    bad = tmp_path / "map.yaml"
    bad.write_text(f"{DEPLOYMENT_ID}: taxi-training\nnot-a-uuid: x\n")

    with pytest.raises(InvalidAutomation) as raised:
        read_id_map([bad])

    assert raised.value.lines() == [f"{bad}: not-a-uuid: not a Prefect id (a UUID)"]


def test_a_map_that_does_not_parse_names_the_line(tmp_path):
    broken = tmp_path / "map.yaml"
    broken.write_text(f"{DEPLOYMENT_ID}: taxi\n  : [\n")

    with pytest.raises(MalformedDocument) as raised:
        read_id_map([broken])

    assert "line 2" in str(raised.value)


def test_a_listing_of_something_else_is_refused(tmp_path):
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"id": DEPLOYMENT_ID, "name": "r", "state_type": "FAILED"}]))

    with pytest.raises(InvalidAutomation, match=r"\[0\]: not a deployment, work queue, block"):
        read_id_map(prefect_listings=[runs])


def test_file_names_stay_in_the_directory_and_do_not_collide():
    assert file_name("../../etc/passwd") == "etc-passwd.json"
    assert file_name(".hidden") == "hidden.json"
    results = import_prefect_documents([exported()[4], exported()[4], exported()[5]])

    assert file_names(results) == ["Pending-then-Running-in-order.json",
                                   "Pending-then-Running-in-order-2.json", None]


def test_placeholders_that_name_nothing_are_found_with_their_field_paths():
    queue = import_prefect_documents(exported())[2].automation.model_dump(mode="json")

    found = [(p.path, p.kind) for p in placeholders_in(queue)]
    assert found == [("trigger.match.resource.id", "work-queue"),
                     ("actions[0].notifier", "block")]
    problems = unmapped_placeholders(queue, lambda placeholder: placeholder.kind == "block")
    assert [problem.path for problem in problems] == ["trigger.match.resource.id"]
    assert "unmapped Prefect work-queue id" in problems[0].message


def test_the_summary_filled_in_is_a_map_that_leaves_no_placeholder(tmp_path):
    summary = placeholder_summary(import_prefect_documents(exported()))
    filled = tmp_path / "ids.yaml"
    filled.write_text("\n".join(re.sub(r"<([a-z ]+) name>", "some-name", line)
                                for line in summary))

    results = import_prefect_documents(exported(), names=read_id_map([filled]))

    assert placeholder_summary(results) == []
    assert results[1].automation.actions[0].deployment == "some-name"
