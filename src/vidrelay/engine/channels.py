"""Which upstream runs a job. This issue's form: the embedded `local` channel serves everything.

Routing by route class, priority tiers and failover replace this (DESIGN.md §5, step 2).
"""

from __future__ import annotations

from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.jobs import JobRecord
from vidrelay.upstreams.base import Upstream


class ChannelRegistry:
    def __init__(self, upstreams: list[Upstream]) -> None:
        self._by_name = {upstream.name: upstream for upstream in upstreams}

    def for_job(self, job: JobRecord) -> Upstream:
        if job.channel and job.channel in self._by_name:
            return self._by_name[job.channel]
        for upstream in self._by_name.values():
            return upstream
        raise InvalidRequest(f"no channel serves {job.model} on the {job.route_class} route")

    async def close(self) -> None:
        for upstream in self._by_name.values():
            await upstream.close()
