"""The `ark` protocol: ByteDance Seedance on Volcengine Ark (China) and BytePlus ModelArk
(international), the same API under two roots and two key pools.

A video is an asynchronous task: `POST /api/v3/contents/generations/tasks` with
`Authorization: Bearer <API key>` and a JSON body `{"model", "content": [text item, image
item], ...settings as body fields}` answers `{"id": "cgt-…"}`; `GET …/tasks/{id}` tells its
`status` (`queued`, `running`, `succeeded`, `failed`, `cancelled`, `expired`), the reason in
`error {code, message}`, and once succeeded the video at `content.video_url`, a signed link on
another origin that expires (24 h), so it is collected at once and asked for again when it
fails. Errors are `{"error": {"code", "message"}}`, and the code says more than the status:
429 is a rate limit or an exhausted limit, 403 a refused key or an overdue balance, 400 a bad
parameter or a moderation block. Model ids are dated (`doubao-seedance-1-5-pro-251215` on
Volcengine, `seedance-1-5-pro-251215` on BytePlus) or an endpoint id (`ep-…`); channels map
public names to them with `model_map`.

Reference: https://docs.byteplus.com/en/docs/ModelArk/1520757 (create a task),
https://docs.byteplus.com/en/docs/ModelArk/1521309 (query a task),
https://docs.byteplus.com/en/docs/ModelArk/1299023 (error codes), and the same pages on
Volcengine, https://www.volcengine.com/docs/82379/1520757 and /1521309. Read beside them:
new-api's `relay/channel/task/doubao/adaptor.go`, `constants.go` and `README.md`. Where they
differ from the docs, the docs win: new-api sends `ratio`/`resolution` only when a client puts
them in its metadata (here the size says them), and it knows no `cancelled` or `expired`, so
such a task stays "in progress" there forever (here both end the job, refunded); the words it
adds (`pending`, `processing`) are kept as running, harmless.
Parts: `request` (the submit body), `status` (words, progress, the video URL), `errors` (codes
to failure kinds), `adapter` (the calls, content retrieval and the probe).
"""

from vidrelay.upstreams.ark.adapter import ArkUpstream
from vidrelay.upstreams.ark.request import map_request
from vidrelay.upstreams.ark.status import state_for_status

__all__ = ["ArkUpstream", "map_request", "state_for_status"]
