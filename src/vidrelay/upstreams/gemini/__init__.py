"""The `gemini` protocol: Google Veo through the Gemini API (`generativelanguage.googleapis.com`).

A job is a long-running operation. `POST /v1beta/models/{model}:predictLongRunning` with
`{"instances": [{"prompt", "image"?}], "parameters": {"aspectRatio", "resolution",
"durationSeconds", ...}}` answers `{"name": "models/{model}/operations/{id}"}`: that name is
the upstream job id. `GET /v1beta/{name}` reads it: running until `done`, then failed
(`error`, or no sample but `raiMediaFilteredReasons`: the safety filters) or completed with
`response.generateVideoResponse.generatedSamples[0].video.uri`, a file on the API host
(`…/v1beta/files/{id}:download?alt=media`) that needs the key and redirects to storage. The
key travels as `x-goog-api-key` on every call, never in a URL. An extension is the same call
with that URI as `instances[0].video.uri` (vidrelay keeps it on the job at completion).

Followed: https://ai.google.dev/gemini-api/docs/video (the REST examples and "Veo API
parameters and specifications"), https://ai.google.dev/api/models#method:-models.predictlongrunning,
https://ai.google.dev/gemini-api/docs/troubleshooting (the error codes) and
https://ai.google.dev/gemini-api/docs/pricing (the shipped prices), checked against the
official SDK's wire mapping (googleapis/python-genai `models.py`: `_GenerateVideosConfig_to_mldev`,
`_Image_to_mldev`, `_GenerateVideosResponse_from_mldev`). Read in new-api:
`relay/channel/task/gemini/adaptor.go`, `dto.go`, `image.go`, `billing.go` and
`plugins/tasks/google/plugin.js`. Where they differ from the documentation this package follows
the documentation: new-api's newer code reads `generateVideoResponse.generatedVideos` (the
REST API and the SDK say `generatedSamples`; both are read here) and its plugin sends the image
as `inlineData` (the SDK sends `{bytesBase64Encoded, mimeType}`, as here).

Parts: `request` (the submit body and what each Veo model accepts), `status` (an operation
as our state), `errors` (what an error body says), `adapter` (the calls, content retrieval and
the probe).
"""

from vidrelay.upstreams.gemini.adapter import GeminiUpstream
from vidrelay.upstreams.gemini.request import map_request
from vidrelay.upstreams.gemini.status import read_operation

__all__ = ["GeminiUpstream", "map_request", "read_operation"]
