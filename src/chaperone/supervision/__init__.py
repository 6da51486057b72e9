"""The job side: supervise a job, send heartbeats and progress, and the records they write."""

from chaperone.supervision._job import Supervision
from chaperone.supervision._records import JobRecord, JobState
from chaperone.supervision._supervise import current_job, default_supervisor, supervise
from chaperone.supervision._supervisor import Supervisor

__all__ = [
    "JobRecord",
    "JobState",
    "Supervision",
    "Supervisor",
    "current_job",
    "default_supervisor",
    "supervise",
]
