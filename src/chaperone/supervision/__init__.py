"""The job side: supervise a job, send heartbeats and progress, and the records they write."""

from chaperone.supervision._records import JobRecord, JobState
from chaperone.supervision._supervisor import (
    Supervision,
    Supervisor,
    current_job,
    default_supervisor,
    supervise,
)

__all__ = [
    "JobRecord",
    "JobState",
    "Supervision",
    "Supervisor",
    "current_job",
    "default_supervisor",
    "supervise",
]
