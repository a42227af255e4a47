// The official `openai` Node SDK, unmodified, against a real `vidrelay serve` (the local
// renderer): create, retrieve, download, remix, extend, edit (by id and by upload),
// createCharacter and getCharacter, in one run so the suite pays for one server.
//
// Run by tests/e2e/test_openai_node_sdk.py with VIDRELAY_BASE_URL, VIDRELAY_KEY, VIDRELAY_CLIP
// (a short MP4 to upload) and VIDRELAY_OUT (a directory for the extended video, whose length
// the Python side measures). Prints one JSON line of what it made; exits 1 on any mismatch.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import OpenAI, { toFile } from 'openai';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is required`);
  return value;
};
const client = new OpenAI({ apiKey: env('VIDRELAY_KEY'), baseURL: `${env('VIDRELAY_BASE_URL')}/v1`, maxRetries: 0 });
const clip = await readFile(env('VIDRELAY_CLIP'));
const upload = (name) => toFile(clip, name, { type: 'video/mp4' });

async function finished(video) {
  const deadline = Date.now() + 60_000;
  while (video.status !== 'completed' && video.status !== 'failed') {
    assert.ok(Date.now() < deadline, `still ${video.status}: ${video.id}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    video = await client.videos.retrieve(video.id);
  }
  assert.equal(video.status, 'completed', JSON.stringify(video));
  return video;
}

async function download(videoId) {
  const response = await client.videos.downloadContent(videoId);
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp', 'an MP4');
  return bytes;
}

const source = await finished(
  await client.videos.create({ prompt: 'a paper boat', seconds: '4', size: '1280x720' }),
);
assert.equal((await client.videos.retrieve(source.id)).id, source.id);
await download(source.id);

const remix = await finished(await client.videos.remix(source.id, { prompt: 'a paper plane' }));
assert.equal(remix.remixed_from_video_id, source.id);
assert.deepEqual([remix.seconds, remix.size, remix.model], ['4', '1280x720', 'sora-2']);

// The Node SDK sends an object reference as bracketed multipart fields: `video[id]`.
const extension = await client.videos.extend({ prompt: 'the boat sails on', seconds: '4', video: { id: source.id } });
assert.equal(extension.seconds, '8'); // the whole stitched length
const extended = await finished(extension);
await writeFile(join(env('VIDRELAY_OUT'), 'extended.mp4'), await download(extended.id));

const edited = await finished(await client.videos.edit({ prompt: 'at night', video: { id: source.id } }));
const uploaded = await finished(await client.videos.edit({ prompt: 'at dawn', video: await upload('clip.mp4') }));

const character = await client.videos.createCharacter({ name: 'Mira', video: await upload('mira.mp4') });
assert.match(character.id, /^char_/);
assert.equal(character.name, 'Mira');
const fetched = await client.videos.getCharacter(character.id);
assert.deepEqual([fetched.id, fetched.name], [character.id, 'Mira']);

const listed = new Map();
for await (const video of client.videos.list({ limit: 10 })) listed.set(video.id, video.operation);
assert.equal(listed.get(remix.id), 'remix');
assert.equal(listed.get(extended.id), 'extension');
assert.equal(listed.get(edited.id), 'edit');

console.log(
  JSON.stringify({
    source: source.id,
    remix: remix.id,
    extended: extended.id,
    edited: edited.id,
    uploaded: uploaded.id,
    character: character.id,
  }),
);
