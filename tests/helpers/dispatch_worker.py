"""A job process that raises JobStuck events through ``Chaperone.from_environment()``.

Run as a script, with the configuration in the environment and the working directory:

``python dispatch_worker.py SUPERVISION_ID...``
    dispatch one JobStuck per id, print one JSON line (a list: what became of each), exit.
``python dispatch_worker.py --serve``
    build the runtime, print ``ready``, then for each line read from standard input (a
    supervision id) dispatch one JobStuck and print what became of it as one JSON line;
    stop at the end of input. A test that has several of these waiting can release them
    all at the same moment.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

from chaperone import Chaperone, DispatchReport, JobStuck

READY = "ready"


def _dispatch(runtime: Chaperone, supervision_id: str) -> dict[str, Any]:
    report: DispatchReport = runtime.dispatch(
        JobStuck(
            supervision_id=supervision_id,
            job_class="App\\Jobs\\ProcessLargeDataset",
            stuck_duration=timedelta(minutes=30),
        )
    )
    return {
        "supervision_id": supervision_id,
        "skipped": report.skipped,
        "alerts": [
            {
                "type": alert_report.alert.type,
                "key": alert_report.alert.key,
                "verdict": alert_report.verdict.kind.value,
                "reason": alert_report.verdict.reason,
                "deliveries": [
                    {
                        "channel": result.destination.channel,
                        "ok": result.ok,
                        "attempts": result.attempts,
                        "detail": result.outcome.detail,
                    }
                    for result in alert_report.deliveries
                ],
            }
            for alert_report in report.alerts
        ],
    }


def _say(data: Any) -> None:
    sys.stdout.write((data if isinstance(data, str) else json.dumps(data)) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """Dispatch the ids in ``argv``, or serve ids from standard input with ``--serve``."""
    with Chaperone.from_environment() as runtime:
        if argv != ["--serve"]:
            _say([_dispatch(runtime, supervision_id) for supervision_id in argv])
            return 0
        _say(READY)
        for line in sys.stdin:
            if line.strip():
                _say(_dispatch(runtime, line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
