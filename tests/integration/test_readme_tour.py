"""The README's tour, command by command, in a new folder, against real processes: the
flow file it shows, `python tiny.py`, then every line of its shell block in order (`up`
in the background, `<id>` standing for the id the command before printed). Then the
first hour's alert: a failing flow registered the same way emails a default message
through SendGrid (a local stub) with a link to the run's page that opens.

Everything runs as subprocesses with the CLI, against the private Redis of the test
session (REDIS_URL). One departure from the text, about this shared machine: `up` gets
a free `--port` (8000 may be taken). Nothing sets PYTHONPATH: the CLI and the workers put
the folder they start from on the import path, as the README says.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.integration.notify_helpers import SENDGRID_KEY
from tests.integration.up_process import free_port
from tests.notifiers.conftest import StubServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RUN_ID = re.compile(r"\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)")
COMMAND_TIMEOUT_S = 120
FAILING_FLOW = '''
from flows import flow, task


@task
def check(path: str) -> None:
    raise FileNotFoundError(f"no data at {path}")


@flow(name="nightly-check")
def nightly_check(path: str = "missing.parquet") -> None:
    check(path)
'''
ON_FAILURE = """
name: email-on-nightly-failure
trigger:
  type: event
  posture: Reactive
  match: {resource.id: "flow-run.*"}
  match_related: {resource.role: deployment, resource.name: nightly}
  expect: [flow-run.Failed]
actions:
  - type: send-email
    notifier: team-email
"""


def tour_blocks() -> tuple[str, list[str]]:
    """The flow file the tour shows, and the lines of its shell block."""
    text = README.read_text()
    tour = text[text.index("## A short tour"):text.index("## Automations")]
    [python] = re.findall(r"```python\n(.*?)```", tour, re.S)
    [shell] = [block for block in re.findall(r"```bash\n(.*?)```", tour, re.S)
               if "flowkeeper up" in block]
    lines = [re.split(r"\s+#\s", line)[0].strip() for line in shell.splitlines()]
    return python, [line for line in lines if line]




@dataclass
class Tour:
    folder: Path
    env: dict[str, str]
    port: int
    outputs: list[tuple[str, subprocess.CompletedProcess]] = field(default_factory=list)
    up: subprocess.Popen | None = None
    last_id: str | None = None

    def argv(self, line: str) -> list[str]:
        words = shlex.split(line)
        if words[0] == "flowkeeper":
            words[0:1] = [sys.executable, "-m", "services.cli.main"]
        elif words[0] == "python":
            words[0] = sys.executable
        return [self.last_id if word == "<id>" and self.last_id else word for word in words]

    def run(self, line: str, extra_env: dict[str, str] | None = None,
            expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(line), cwd=self.folder, env=self.env | (extra_env or {}),
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        self.outputs.append((line, result))
        assert result.returncode == expect, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, f"{line}\n{result.stderr}"
        found = RUN_ID.findall(result.stdout)
        if found:
            self.last_id = found[0]
        return result

    def start(self, line: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([*self.argv(line), *extra], cwd=self.folder, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def state(self, run_id: str) -> str:
        shown = self.run(f"flowkeeper run show {run_id}")
        return re.search(r"^state\s+(\w+)", shown.stdout, re.M).group(1)


def interrupt(process: subprocess.Popen, timeout_s: float = 60) -> str:
    """Ctrl-C, as a person would, and what it printed."""
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def follow_until(process: subprocess.Popen, wanted: str, timeout_s: float = 30) -> str:
    """What a following command printed once `wanted` appeared in it (or the deadline
    passed), after Ctrl-C: read as it comes, so no fixed wait guesses how long it takes."""
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(wanted in line for line in list(lines)), timeout_s,
                   interval=0.1, message=f"'{wanted}' from the following command")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
    return "".join(lines)


def api_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def tour(redis_server) -> Iterator[Tour]:
    """The tour's commands run in order in a new folder, with `up` kept running."""
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    # a short folder: the tour's FLOWKEEPER_HOME lives in it
    folder = Path(tempfile.mkdtemp(prefix="fk-tour-", dir="/tmp"))
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FLOWKEEPER_", "PYTHONPATH", "SENDGRID_", "SLACK_", "SMTP_",
                                   "WEBHOOK_"))}
    env |= {"REDIS_URL": redis_server.url, "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
            "FLOWKEEPER_CANCEL_GRACE_S": "2", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    tour = Tour(folder=folder, env=env, port=free_port())
    python, lines = tour_blocks()
    (folder / "tiny.py").write_text(python)
    tour.run("python tiny.py")
    try:
        for line in lines:
            if line.endswith("&"):
                tour.up = tour.start(line.rstrip("& "), "--port", str(tour.port))
                wait_until(lambda: api_answers(tour.port) or tour.up.poll() is not None, 90,
                           interval=0.2, message="the API of `flowkeeper up`")
                assert tour.up.poll() is None, tour.up.stdout.read()
            elif line.startswith("flowkeeper events tail --follow"):
                follower = tour.start(line)
                output = follow_until(follower, "flow-run.Completed")
                tour.outputs.append((line, subprocess.CompletedProcess(
                    line, follower.returncode, output, "")))
            else:
                tour.run(line)
        yield tour
    finally:
        if tour.up is not None:
            print(interrupt(tour.up)[-3000:])
        shutil.rmtree(folder, ignore_errors=True)


def output_of(tour: Tour, start: str) -> subprocess.CompletedProcess:
    return next(result for line, result in tour.outputs if line.startswith(start))


def test_the_readme_tour_runs_as_written(tour):
    waited = output_of(tour, "flowkeeper deployment run tiny -p path=other.parquet --wait")
    shown = output_of(tour, "flowkeeper run show")
    logs = output_of(tour, "flowkeeper run logs")
    retried = output_of(tour, "flowkeeper run retry")
    cancelled = output_of(tour, "flowkeeper run cancel")
    events = output_of(tour, "flowkeeper events tail")

    assert waited.stdout.strip().splitlines()[-1].endswith("Completed")
    assert '"path": "other.parquet"' in shown.stdout and "score 0.42" in shown.stdout
    assert "training on 3 rows" in logs.stdout
    assert "retry of" in retried.stdout
    assert "Cancelling" in cancelled.stdout or "Cancelled" in cancelled.stdout
    wait_until(lambda: tour.state(tour.last_id) == "Cancelled", 60,
               interval=1, message="the long run to be Cancelled")
    assert "flow-run.Completed" in events.stdout and "Traceback" not in events.stdout


def test_a_failing_flow_registered_the_same_way_emails_a_link_that_opens(tour):
    (tour.folder / "failing.py").write_text(FAILING_FLOW)
    (tour.folder / "on-failure.yaml").write_text(ON_FAILURE)
    server = StubServer()
    server.start()
    try:
        server.play(then=(202, {"X-Message-Id": "sg-tour"}))
        tour.run("flowkeeper deployment register nightly --entrypoint failing:nightly_check")
        refused = tour.run("flowkeeper automation apply on-failure.yaml", expect=2)
        tour.run("flowkeeper notifier add team-email --type sendgrid "
                 f"-s api_key={SENDGRID_KEY} -s from=ml@example.com -s to=team@example.com "
                 f"-s api_host={server.url}")
        tour.run("flowkeeper automation apply on-failure.yaml")
        failed = tour.run("flowkeeper deployment run nightly --wait", expect=1)
        run_id = tour.last_id
        wait_until(lambda: server.requests, 90, interval=0.2, message="the email")
    finally:
        server.stop()
    email = server.requests[0].json
    text = next(part["value"] for part in email["content"] if part["type"] == "text/plain")
    link = re.search(r"Open the run: (\S+)", text).group(1)
    page = httpx.get(link, timeout=10)
    shown = tour.run(f"flowkeeper run show {run_id}").stdout
    flow_name = re.search(r"^flow\s+(\S+)", shown, re.M).group(1)
    assert flow_name == "nightly-check"  # the declared name, never the function's
    run_name = re.search(r"created flow run (\S+) \(", failed.stdout).group(1)

    assert "on-failure.yaml:11: actions[0].notifier: no notifier named 'team-email'" \
        in refused.stderr
    assert "ended Failed" in failed.stderr
    assert email["personalizations"] == [{"to": [{"email": "team@example.com"}]}]
    assert email["subject"].startswith("[flowkeeper] ") and email["subject"].endswith("Failed")
    assert run_name in email["subject"] and flow_name in email["subject"]
    assert f"Run: {run_name}" in text and f"Flow: {flow_name}" in text
    assert "FileNotFoundError: no data at missing.parquet" in text
    assert link.startswith(f"http://127.0.0.1:{tour.port}/runs/{run_id}?exp=")
    assert page.status_code == 200
    assert SENDGRID_KEY not in page.text and SENDGRID_KEY not in str(email)
    assert "no data at missing.parquet" in page.text and "nightly" in page.text
    unsigned = httpx.get(link.split("?")[0], timeout=10)  # without the signature: sign in
    assert unsigned.status_code == 303
    assert unsigned.headers["location"] == f"/signin?next=/runs/{run_id}"
