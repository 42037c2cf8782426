"""Admit: a tenant never holds more devices at once than its quota (a share of a device counts as its
fraction: two half-device jobs hold one device of the quota)."""

from __future__ import annotations

from zhisuan.scheduler.snapshot import PendingJob, Snapshot, TenantState


class Quota:
    name = "quota"
    reason = "tenant quota of devices reached"

    def applies(self, snapshot: Snapshot) -> bool:
        return any(t.quota_devices is not None for t in snapshot.tenants.values())

    def admits(self, job: PendingJob, asked: int, tenant: TenantState, held: int) -> bool:
        return tenant.quota_devices is None or held + asked <= tenant.quota_devices * 1000
