"""A plain script that has to start the embedded Redis says, once, that it keeps running,
where, and how to stop it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
from flows import flow

@flow(name="notice-flow")
def notice_flow() -> int:
    return 1

if __name__ == "__main__":
    notice_flow()
    notice_flow()
"""


@pytest.mark.slow
def test_a_script_that_started_the_embedded_redis_says_it_keeps_running():
    # a short home: the socket path must fit in sockaddr_un
    home = Path(tempfile.mkdtemp(prefix="fk-notice-", dir="/tmp"))
    script = home / "notice.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env |= {"FLOWKEEPER_HOME": str(home / "fk"), "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=home, env=env, capture_output=True, text=True,
                              timeout=120)

    try:
        first = run(sys.executable, str(script))
        second = run(sys.executable, str(script))
    finally:
        stopped = run(sys.executable, "-m", "services.cli.main", "redis", "stop")
        shutil.rmtree(home, ignore_errors=True)

    assert first.returncode == 0, first.stderr
    assert first.stderr.count("started the embedded Redis") == 1
    assert "keeps running after this process exits" in first.stderr
    assert "flowkeeper redis stop" in first.stderr and str(home / "fk") in first.stderr
    assert second.returncode == 0, second.stderr
    assert "started the embedded Redis" not in second.stderr
    assert stopped.returncode == 0 and "stopped the embedded Redis" in stopped.stdout
