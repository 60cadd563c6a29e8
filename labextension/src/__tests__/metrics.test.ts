import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  IMetricsReply,
  ISeries,
  MetricsData,
  alignedData,
  downsample,
  formatValue,
  lastAndBest,
  mergePoints
} from '../metrics';

function reply(
  series: IMetricsReply['series'],
  cursor: string,
  extra: Partial<IMetricsReply> = {}
): IMetricsReply {
  return {
    name: 'job',
    replicas: ['chief-0'],
    series,
    goals: Object.fromEntries(
      Object.keys(series).map(m => [m, m.includes('acc') ? 'max' : 'min'])
    ),
    cursor,
    reset: false,
    live: true,
    errors: {},
    ...extra
  };
}

test('points merge in step order; a step seen again takes the new value', () => {
  let s: ISeries = { steps: [], values: [] };
  s = mergePoints(s, [
    [0, 1],
    [2, 3]
  ]);
  s = mergePoints(s, [
    [1, 2],
    [2, 9],
    [5, 4]
  ]);
  assert.deepEqual(s, { steps: [0, 1, 2, 5], values: [1, 2, 9, 4] });
});

test('downsampling bounds a series and keeps first, last and extremes', () => {
  const steps = Array.from({ length: 50000 }, (_, i) => i);
  const values = steps.map(i => Math.sin(i / 300));
  values[12345] = -40;
  values[33333] = 70;
  const small = downsample({ steps, values }, 1000);
  assert.ok(small.steps.length <= 500, `${small.steps.length} points`);
  assert.equal(small.steps[0], 0);
  assert.equal(small.steps[small.steps.length - 1], 49999);
  assert.ok(small.steps.includes(12345) && small.steps.includes(33333));
  assert.deepEqual(
    small.steps,
    [...small.steps].sort((a, b) => a - b)
  );
  // Growing one point at a time never holds more than the limit either.
  let grown: ISeries = { steps: [], values: [] };
  for (let i = 0; i < 5000; i++) {
    grown = mergePoints(grown, [[i, i % 97]], 200);
    assert.ok(grown.steps.length <= 200);
  }
  assert.equal(lastAndBest(grown, 'max').best!.value, 96);
});

test('replies merge incrementally; a reset reply replaces what is held', () => {
  const data = new MetricsData();
  assert.ok(
    data.apply(
      reply(
        {
          loss: {
            'chief-0': [
              [0, 1],
              [1, 0.5]
            ]
          },
          accuracy: { 'chief-0': [[0, 0.1]] }
        },
        'g-3',
        { reset: true }
      )
    )
  );
  assert.ok(data.apply(reply({ loss: { 'chief-0': [[2, 0.25]] } }, 'g-4')));
  assert.equal(data.cursor, 'g-4');
  assert.deepEqual(data.series.get('loss')!.get('chief-0')!.steps, [0, 1, 2]);
  assert.equal(data.goal('accuracy'), 'max');
  assert.equal(data.goal('loss'), 'min');
  assert.deepEqual(Array.from(data.series.keys()), ['loss', 'accuracy']);
  assert.equal(data.apply(reply({}, 'g-4')), false); // nothing new: no redraw
  assert.ok(data.apply(reply({}, 'g-4', { live: false }))); // the end is news
  data.apply(reply({ loss: { 'chief-0': [[7, 3]] } }, 'h-1', { reset: true }));
  assert.deepEqual(data.series.get('loss')!.get('chief-0')!.steps, [7]);
  assert.equal(data.series.has('accuracy'), false);
});

test('last and best follow the goal; ties keep the earliest best', () => {
  const s = { steps: [0, 1, 2, 3], values: [0.5, 0.2, 0.2, 0.4] };
  assert.deepEqual(lastAndBest(s, 'min'), {
    last: { step: 3, value: 0.4 },
    best: { step: 1, value: 0.2 }
  });
  assert.deepEqual(lastAndBest(s, 'max').best, { step: 0, value: 0.5 });
  assert.deepEqual(lastAndBest({ steps: [], values: [] }, 'min'), {
    last: null,
    best: null
  });
});

test('aligned data has every step once and nulls where a replica has none', () => {
  const replicas = new Map<string, ISeries>([
    ['chief-0', { steps: [0, 2], values: [1, 3] }],
    ['worker-0', { steps: [1, 2], values: [5, 6] }]
  ]);
  assert.deepEqual(alignedData(replicas), [
    [0, 1, 2],
    [1, null, 3],
    [null, 5, 6]
  ]);
});

test('values read like metrics', () => {
  assert.equal(formatValue(0.037012), '0.03701');
  assert.equal(formatValue(1), '1');
  assert.equal(formatValue(12345.678), '12350');
  assert.equal(formatValue(0.00001234), '1.234e-5');
  assert.equal(formatValue(0), '0');
});
