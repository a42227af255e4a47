"""The `kling` protocol: Kling AI's own video API (Kuaishou), with JWT-signed key pairs.

A channel's base URL is the API root, `https://api-singapore.klingai.com` (global) or
`https://api-beijing.klingai.com`; its keys are `ACCESS_KEY:SECRET_KEY` pairs, each request
signed with a short-lived HS256 token (`auth`). A job is a task: `POST /v1/videos/text2video`
or `/v1/videos/image2video` (JSON), answered `{"code": 0, "message", "request_id", "data":
{"task_id", "task_status", ...}}`; then `GET` the same path plus `/{task_id}` until
`data.task_status` is `succeed` (the video at `data.task_result.videos[0].url`, a CDN link that
expires) or `failed` (the reason in `data.task_status_msg`). The id handed to the engine is
`{endpoint}:{task_id}`, so a restarted process knows which path queries it. An extension is
`POST /v1/videos/video-extend` naming the source by Kling's own video id
(`task_result.videos[0].id`, which vidrelay keeps on the job at completion), queried the same
way. Every answer
carries a service `code`, 0 for success: an error is read from it, not from the HTTP status
alone (1102, a depleted resource pack, comes as HTTP 429).

Reference: https://app.klingai.com/global/dev/document-api/apiReference/model/textToVideo ,
https://app.klingai.com/global/dev/document-api/apiReference/model/imageToVideo ,
https://app.klingai.com/global/dev/document-api/apiReference/commonInfo (JWT, error codes),
https://app.klingai.com/global/dev/document-api/apiReference/model/videoExtension;
read beside new-api's `relay/channel/task/kling/adaptor.go` and `plugins/tasks/kling/plugin.js`
(QuantumNous/new-api). Where they differ this follows the docs: new-api writes keys
`access|secret` (here `access:secret`, as every key pair in vidrelay), sends `model` beside
`model_name` (only `model_name` is documented) and `aspect_ratio` on image to video (not a
field there), and fails on a status word it does not know (here: still running).

Parts: `auth` (tokens), `request` (the body, per-model limits), `status` (words, progress, the
video URL), `errors` (service codes to failure kinds), `adapter` (the calls, content retrieval
and the probe).
"""

from vidrelay.upstreams.kling.adapter import KlingUpstream
from vidrelay.upstreams.kling.request import map_request
from vidrelay.upstreams.kling.status import state_for_status

__all__ = ["KlingUpstream", "map_request", "state_for_status"]
