"""The same work on Prefect 3 and on flowkeeper, one after the other in one run, and the
ratios (`make bench-peers`; not part of `make test` or `make bench`).

Each side runs in its own interpreter: Prefect's in the bench's own venv (`.peers/venv`,
made by the make target with a pinned Prefect), flowkeeper's in the project's. Each writes
its samples as JSON; this prints one table of medians with min-max, and the ratio of the
medians, and writes it to bench/results/peers.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import machine_line
from bench.peers.common import MEASURES, advantage_text, spread_text

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".peers" / "venv" / "bin" / "python"
RESULTS = ROOT / "bench" / "results"
SIDE_TIMEOUT_S = 900


def _run_side(python: Path, module: str, out: Path) -> dict:
    # each side's own output goes to a
    # file beside the results (its SDK logs every run, as a user would see it)
    log = RESULTS / f"{module.rsplit('.', 1)[-1]}.log"
    print(f"running {module} (its output: {log.relative_to(ROOT)}) ...", file=sys.stderr,
          flush=True)
    started = time.monotonic()
    with open(log, "wb") as handle:
        finished = subprocess.run([str(python), "-m", module, "--out", str(out)], cwd=ROOT,
                                  stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=SIDE_TIMEOUT_S)
    if finished.returncode:
        print(log.read_text(errors="replace")[-3_000:], file=sys.stderr)
        raise SystemExit(f"{module} failed (exit {finished.returncode})")
    print(f"  {module}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return json.loads(out.read_text())


def render(peer: dict, ours: dict) -> str:
    """The table: each measure's median (min-max) on both sides and flowkeeper's ratio."""
    name = f"Prefect {peer.get('version', '')}".strip()
    lines = [f"| measure | unit | {name} | flowkeeper | flowkeeper vs Prefect |",
             "|---|---|---|---|---|"]
    for key, label, unit, lower_is_better in MEASURES:
        theirs, mine = peer["measures"].get(key), ours["measures"].get(key)
        if not theirs or not mine:
            lines.append(f"| {label} | {unit} | {spread_text(theirs) if theirs else 'n/a'} | "
                         f"{spread_text(mine) if mine else 'n/a'} | not measured |")
            continue
        lines.append(f"| {label} | {unit} | {spread_text(theirs)} | {spread_text(mine)} | "
                     f"{advantage_text(theirs, mine, lower_is_better)} |")
    return "\n".join(lines)


def notes(side: dict) -> str:
    found = side.get("notes", {})
    listed = found.get("processes", [])
    if isinstance(listed, dict):  # written by the first version of the sides
        listed = [(name, mb, mb) for name, mb in listed.items()]
    listed = [(entry[0], entry[1], entry[-1]) for entry in listed]
    processes = ", ".join(f"{name} {rss:.0f} MB (PSS {pss:.0f})" for name, rss, pss in listed)
    servers = sum(pss for name, _rss, pss in listed if " worker" not in name)
    burst = found.get("burst", {})
    return (f"{side['side']}: idle processes: {processes}; PSS without workers {servers:.0f} MB\n"
            f"{side['side']}: burst outcomes {burst.get('outcomes')} in "
            f"{burst.get('seconds', 0):.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-json", nargs=2, metavar=("PEER", "OURS"),
                        help="render two sides' JSON written earlier instead of measuring")
    args = parser.parse_args()
    if args.from_json:
        peer, ours = (json.loads(Path(path).read_text()) for path in args.from_json)
    else:
        if not PEER_PYTHON.exists():
            print("the bench's Prefect venv is missing: run `make bench-peers`", file=sys.stderr)
            return 2
        RESULTS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="peers-") as folder:
            peer = _run_side(PEER_PYTHON, "bench.peers.prefect_side", Path(folder) / "peer.json")
            ours = _run_side(Path(sys.executable), "bench.peers.flowkeeper_side",
                             Path(folder) / "ours.json")
            (RESULTS / "peers-prefect.json").write_text(json.dumps(peer, indent=1))
            (RESULTS / "peers-flowkeeper.json").write_text(json.dumps(ours, indent=1))
    report = (f"flowkeeper against {peer['side']} {peer.get('version', '')}, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine_line()}; median (min-max), "
              f"ratio of the medians\n\n{render(peer, ours)}\n\n{notes(peer)}\n{notes(ours)}\n")
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
