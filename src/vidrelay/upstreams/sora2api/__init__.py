"""The `sora2api` adapter: gateways of the sora2api family, where a video is one streamed chat.

sora2api (TheSmallHanCat/sora2api) serves Sora as OpenAI chat completions. A video is made by
`POST /v1/chat/completions` with `stream: true` (`stream: false` only checks availability); the
whole generation then runs inside that one response, an SSE stream of `chat.completion.chunk`s:
progress as text in `choices[0].delta.reasoning_content` ("**Video Generation Progress**: 42%"),
the result as `choices[0].delta.content` = "```html\\n<video src='URL' controls></video>\\n```",
a draft refused by moderation as content "❌ 生成失败: reason", an exception as a
`data: {"error": {"message": ...}}` line, and `data: [DONE]` last.

There is no job id to look up later: the open stream *is* the job. So `submit` opens it, checks
the status, and hands it to an in-process task under a synthetic id; a stream that breaks, or an
id this process does not hold (it restarted), is a lost job, submitted again by the engine.

Characters (`character_url`) take two streams, as sora2api creates them: first the video alone
(`video_url` content item, no text) with the `avatar-create` model where the upstream lists one
(newer releases refuse a video on a video model) or else with the video model itself (older
releases create the character when the text is missing); its answer names the character
(content "…角色名@username", "character name @username"); then the generation, whose prompt
starts with `@username`.
The video is downloaded here, through the SSRF guard, and sent as a `data:` URI, so the upstream
never fetches a user-given URL from its own network. sora2api always samples the character from
the video's first 3 s ("0,3") and has no parameter for it, so `character_timestamps` is ignored.
"""

from vidrelay.upstreams.sora2api.adapter import Sora2ApiUpstream
from vidrelay.upstreams.sora2api.request import SORA2API_VIDEO_MODELS, sora2api_model
from vidrelay.upstreams.sora2api.request import sora2api_model as map_request

__all__ = ["SORA2API_VIDEO_MODELS", "Sora2ApiUpstream", "map_request", "sora2api_model"]
