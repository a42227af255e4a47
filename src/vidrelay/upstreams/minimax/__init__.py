"""The `minimax` protocol: MiniMax's own video API (Hailuo), on `api.minimax.io` (global) or
`api.minimaxi.com` (China).

A job is three calls: `POST /v1/video_generation` starts it and names a task id;
`GET /v1/query/video_generation?task_id=…` says `Preparing`, `Queueing`, `Processing`,
`Success` (with a `file_id`) or `Fail`; `GET /v1/files/retrieve?file_id=…` names a download URL
on MiniMax's CDN (another origin, so no key goes there) that expires (9 hours), so a fresh one
is asked for when a download is refused. Every call is authorised by `Authorization: Bearer`.
Every refusal is HTTP 200 with `base_resp.status_code` != 0: the body's code, not the HTTP
status, says whether the key, the rate, the balance, the content or the parameters are at
fault. The v1 API has no aspect-ratio field: text-to-video is 16:9, image-to-video keeps the
first frame's ratio; `size` gives the resolution word (512P, 720P, 768P, 1080P).

Reference: https://platform.minimax.io/docs/api-reference/video-generation-intro and its pages
`video-generation-t2v`, `video-generation-i2v`, `video-generation-query`,
`file-management-retrieve` (`video-generation-download`) and `errorcode`; prices from
https://platform.minimax.io/docs/guides/pricing-paygo. Read for comparison: new-api's
`relay/channel/task/hailuo/{adaptor,constants,models}.go` and `plugins/tasks/hailuo/plugin.js`
(they guess the resolution from digits in `size` and treat every query error as a failed task;
the docs' error table says which are the key's, the rate's or the request's). Parts: `request`
(the JSON submit), `status` (words, progress, the file id), `errors` (what a `base_resp` code
means), `adapter` (the calls, content retrieval and the probe).
"""

from vidrelay.upstreams.minimax.adapter import MiniMaxUpstream
from vidrelay.upstreams.minimax.request import map_request
from vidrelay.upstreams.minimax.status import state_for_status

__all__ = ["MiniMaxUpstream", "map_request", "state_for_status"]
