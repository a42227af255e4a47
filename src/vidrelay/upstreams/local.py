"""The `local` adapter: the built-in renderer as an upstream, so vidrelay works offline.

It serves every row of the catalog (both route classes) and every operation, from the stored
MP4s: a remix re-renders the new prompt with its source's colours and motion, an extension plays
its source and then renders the new seconds (the result is as long as both), an edit draws the
new prompt over its source's frames, and a character a create names is drawn in (a still of its
clip, its name beneath). A `character_url` is accepted and ignored.

A render whose worker process died (OOM killer, SIGKILL) is reported as a lost job, so the engine
submits it again on the healed pool (as many times as the engine allows a job to be lost).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from vidrelay.domain.catalog import Operation
from vidrelay.domain.channels import OperationSupport
from vidrelay.render.pool import RenderPool, RenderTask, RenderWorkerLost
from vidrelay.render.spec import Cameo, RenderSpec, SourceClip, SourceUse
from vidrelay.upstreams.base import (
    KeyProbe,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)

_POLL_AFTER_S = 0.5


class LocalUpstream:
    """`font_path`, when given, is the font file every prompt is drawn with (see RenderSpec).

    The render pool is shared (several local channels may be declared) and owned by whoever
    made it; keys mean nothing here.
    """

    def __init__(
        self,
        pool: RenderPool,
        work_dir: Path,
        font_path: str | None = None,
        cost_per_second_micros: int = 0,
        name: str = "local",
    ) -> None:
        self.name = name
        self.cost_per_second_micros = cost_per_second_micros
        self._pool = pool
        self._work_dir = work_dir
        self._font_path = font_path
        self._tasks: dict[str, RenderTask] = {}
        self._by_token: dict[str, str] = {}
        self._token_of: dict[str, str] = {}
        shutil.rmtree(work_dir, ignore_errors=True)  # leftovers of a previous process
        work_dir.mkdir(parents=True, exist_ok=True)

    operations = OperationSupport(
        from_file=frozenset(
            {Operation.REMIX, Operation.EXTENSION, Operation.EDIT, Operation.CHARACTER}
        )
    )

    async def submit(self, request: UpstreamRequest, key: str = "") -> str:
        upstream_job_id = f"local_{secrets.token_hex(12)}"
        normalised = request.request
        source = normalised.source
        spec = RenderSpec(
            prompt=normalised.prompt,
            width=normalised.width,
            height=normalised.height,
            seconds=int(normalised.seconds),
            reference_image=request.reference_image,
            font_path=self._font_path,
            palette_prompt=source.prompt if source is not None else None,
            source=_source_clip(request),
            cameos=tuple(Cameo(c.name, str(c.clip)) for c in request.characters),
        )
        self._tasks[upstream_job_id] = self._pool.submit(spec, self._work_dir / upstream_job_id)
        if request.submission_token:
            self._by_token[request.submission_token] = upstream_job_id
            self._token_of[upstream_job_id] = request.submission_token
        return upstream_job_id

    async def find_submission(self, request: UpstreamRequest, key: str = "") -> str | None:
        """A render lives and dies with this process: one a dead process started is gone, and
        cost nothing but its time."""
        found = self._by_token.get(request.submission_token)
        return found if found in self._tasks else None

    async def poll(self, upstream_job_id: str, key: str = "") -> UpstreamStatus:
        task = self._tasks.get(upstream_job_id)
        if task is None:
            raise UpstreamJobLost()
        if not task.done:
            return UpstreamStatus(
                UpstreamState.RUNNING, task.progress(), poll_after_s=_POLL_AFTER_S
            )
        try:
            await task.result()
        except RenderWorkerLost:
            await self.release(upstream_job_id)  # the dead attempt's files go now
            raise UpstreamJobLost() from None
        except Exception as error:  # the renderer's failure becomes the job's failure
            return UpstreamStatus(
                UpstreamState.FAILED,
                error_code="render_failed",
                error_message=f"The local renderer failed: {error}",
            )
        return UpstreamStatus(UpstreamState.COMPLETED, 100)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str = ""
    ) -> bool:
        task = self._tasks.get(upstream_job_id)
        if task is None:
            raise UpstreamJobLost()
        outputs = await task.result()
        source = {
            "video": outputs.video,
            "thumbnail": outputs.thumbnail,
            "spritesheet": outputs.spritesheet,
        }.get(variant)
        if source is None:
            return False
        if not source.exists():
            raise UpstreamError(f"the local renderer has no {variant} for this job")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, destination)
        return True

    async def release(self, upstream_job_id: str) -> None:
        self._tasks.pop(upstream_job_id, None)
        self._by_token.pop(self._token_of.pop(upstream_job_id, ""), None)
        shutil.rmtree(self._work_dir / upstream_job_id, ignore_errors=True)

    async def probe(self, key: str = "") -> KeyProbe:
        return KeyProbe(key_hint="(none)", ok=True, detail="the built-in renderer is in-process")

    async def close(self) -> None:
        for upstream_job_id in list(self._tasks):
            await self.release(upstream_job_id)


_SOURCE_USE = {Operation.EXTENSION: SourceUse.PREFIX, Operation.EDIT: SourceUse.BACKDROP}


def _source_clip(request: UpstreamRequest) -> SourceClip | None:
    """The source an extension or an edit renders from (a remix only takes its look)."""
    use = _SOURCE_USE.get(request.request.operation)
    source = request.request.source
    if use is None or source is None:
        return None
    if request.source_video is None or not request.source_video.exists():
        raise UpstreamError(
            "The source video is no longer stored here.", code="source_video_unavailable"
        )
    return SourceClip(str(request.source_video), source.seconds, use)
