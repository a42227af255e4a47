"""The `vidu` protocol: Shengshu's Vidu API (`https://api.vidu.com`, `https://api.vidu.cn`).

A job is one task: `POST /ent/v2/text2video` (or `/ent/v2/img2video` with the reference image
as the first frame) answers `{"task_id", "state": "created"}`; `GET /ent/v2/tasks/{id}/
creations` tells its `state` (`created`, `queueing`, `processing`, `success`, `failed` with an
`err_code`) and, once done, `creations[0].url`: a signed CDN link that expires, so the adapter
asks again for a fresh one when a download is refused. Every call carries `Authorization:
Token <key>`. Errors say why in the body's `reason` (`CreditInsufficient`, `AuditSubmitIllegal`,
`TooManyRequests`, …), which decides the failure kind before the HTTP status does.

References followed: https://platform.vidu.com/docs/text-to-video,
https://platform.vidu.com/docs/image-to-video, https://platform.vidu.com/docs/get-generation,
https://platform.vidu.com/docs/error-code, https://platform.vidu.com/docs/get-account-info
(`GET /ent/v2/credits`, what the probe asks) and the same pages on platform.vidu.cn. Read for
comparison: new-api's `relay/channel/task/vidu/adaptor.go` and `plugins/tasks/vidu/plugin.js`
(QuantumNous/new-api). Where they differ from the docs the docs win: new-api sends no
`aspect_ratio`, puts the client's size in `resolution` and sends `images: null` to
text2video, where this adapter sends the documented fields only. new-api also fails a task
whose state it does not know; here it counts as running. Parts: `request` (size, seconds,
image and parameters as the submit body), `status` (words, progress, where the video is, the
account's credits), `errors` (what a `reason` or an `err_code` means), `adapter` (the calls,
content retrieval and the probe).
"""

from vidrelay.upstreams.vidu.adapter import ViduUpstream
from vidrelay.upstreams.vidu.request import submit_body as map_request
from vidrelay.upstreams.vidu.status import state_for_status

__all__ = ["ViduUpstream", "map_request", "state_for_status"]
