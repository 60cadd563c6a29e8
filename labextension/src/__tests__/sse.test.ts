import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseEvents } from '../sse';

test('complete events are parsed, the partial tail is kept for the next chunk', () => {
  const { events, rest } = parseEvents(
    'event: jobs\ndata: {"jobs": []}\n\n: keepalive\n\nevent: job\ndata: {"na'
  );
  assert.deepEqual(events, [{ event: 'jobs', data: '{"jobs": []}' }]);
  assert.equal(rest, 'event: job\ndata: {"na');
  const next = parseEvents(rest + 'me": "a"}\n\n');
  assert.deepEqual(next.events, [{ event: 'job', data: '{"name": "a"}' }]);
  assert.equal(next.rest, '');
});

test('multi-line data is joined, CRLF is accepted, event defaults to "message"', () => {
  const { events } = parseEvents(
    'data: one\r\ndata: two\r\n\r\nevent:end\ndata:{}\n\n'
  );
  assert.deepEqual(events, [
    { event: 'message', data: 'one\ntwo' },
    { event: 'end', data: '{}' }
  ]);
});

test('comment-only blocks produce no event', () => {
  assert.deepEqual(parseEvents(': keepalive\n\n').events, []);
});
