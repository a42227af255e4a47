"""The `dashscope` protocol: Alibaba Cloud Model Studio (DashScope), the Wan video models.

Asynchronous tasks on the provider's own wire protocol: `POST /api/v1/services/aigc/
video-generation/video-synthesis` with `Authorization: Bearer <key>` and `X-DashScope-Async:
enable` answers `{"output": {"task_id", "task_status": "PENDING"}, "request_id"}`; `GET
/api/v1/tasks/{task_id}` (same key) tells the task's status and, once SUCCEEDED, a signed
`output.video_url` on another host that expires after 24 h (a fresh look at the task is taken
when it fails). Errors are `{"code", "message", "request_id"}` and their `code` decides, not the
HTTP status alone (`Arrearage` is a 400 that means an exhausted balance). Task ids never reach a
client; neither do the channel's host or key.

Wan has two request dialects on the same endpoint (the legacy one of wan2.1 to wan2.6, the new
one of wan2.7 and later) and splits text- and image-to-video into sibling model ids; the
request mapper picks both from the model id and the presence of an image (see `request`).

References followed:
https://www.alibabacloud.com/help/en/model-studio/text-to-video-api-reference (wan2.7, new
protocol), https://www.alibabacloud.com/help/en/model-studio/legacy-wan-text-to-video-api-reference
and https://www.alibabacloud.com/help/en/model-studio/legacy-image-to-video-api-reference
(2.1-2.6), https://www.alibabacloud.com/help/en/model-studio/image-to-video-general-api-reference
(wan2.7-i2v, `input.media`), https://help.aliyun.com/zh/model-studio/text-to-video-api-reference;
new-api's `relay/channel/task/ali/adaptor.go` and `constants.go` (QuantumNous/new-api), read for
the status words and the shape of task answers (it fails UNKNOWN tasks; we treat them as lost,
as the docs say the id is unknown or expired). Parts: `request` (the submit body), `status`
(words, progress, the video URL), `errors` (what an error code means), `adapter` (the calls,
content retrieval and the probe).
"""

from vidrelay.upstreams.dashscope.adapter import DashScopeUpstream
from vidrelay.upstreams.dashscope.request import map_request
from vidrelay.upstreams.dashscope.status import state_for_status

__all__ = ["DashScopeUpstream", "map_request", "state_for_status"]
