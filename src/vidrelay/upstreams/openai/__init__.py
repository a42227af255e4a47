"""The `openai` protocol: any upstream that speaks the OpenAI Videos API (`/v1/videos`).

Official OpenAI, other relays, reverse vendors that accept `character_url`, self-hosted
vLLM-Omni. They share the wire protocol but not its details, so the adapter is tolerant where
they differ: status words (`queued`, `pending`, `NOT_START`, ...), progress as a percent, a
fraction or a string, the video at `/content` or behind a `video_url` (often a redirect to a
CDN), previews offered or not. Whatever it cannot read counts as "still running" or as a
retryable failure, never as a crash.

Reference: https://platform.openai.com/docs/api-reference/videos (and `shared/
openai-videos-openapi.json`). Parts: `request` (the multipart submit), `status` (words,
progress, where the video is), `errors` (what an error body says), `adapter` (the calls,
content retrieval and the probe).
"""

from vidrelay.upstreams.openai.adapter import OpenAIUpstream
from vidrelay.upstreams.openai.request import submit_parts as map_request
from vidrelay.upstreams.openai.status import state_for_status

__all__ = ["OpenAIUpstream", "map_request", "state_for_status"]
