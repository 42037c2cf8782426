"""Domain types: job specs, networks of centers and pools, tenants, jobs and placements."""

from zhisuan.model.job import TRANSITIONS, JobState, check_transition
from zhisuan.model.jobspec import JobSpec, SpecError, parse_job_spec
from zhisuan.model.network import Center, Network, Pool, RunningLoad, Tenant, load_network, parse_network
from zhisuan.model.placement import Placement
from zhisuan.model.profile import ControlSettings, SchedulerProfile
from zhisuan.model.request import Request, request_from_spec

__all__ = [
    "TRANSITIONS",
    "Center",
    "ControlSettings",
    "JobSpec",
    "JobState",
    "Network",
    "Placement",
    "Pool",
    "Request",
    "RunningLoad",
    "SchedulerProfile",
    "SpecError",
    "Tenant",
    "check_transition",
    "load_network",
    "parse_job_spec",
    "parse_network",
    "request_from_spec",
]
