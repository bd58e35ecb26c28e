import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffDelay, closeAction, decodeJwt, reconnectWindow, refreshDelay,
} from '../studybuddy.js';
import { fakeJwt } from './fakes.js';

const BACKOFF = { baseMs: 500, capMs: 30_000, retryLaterMs: 2_000 };

test('full-jitter backoff stays within [0, min(cap, base * 2^n)]', () => {
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const bound = Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** attempt);
    assert.equal(backoffDelay(attempt, BACKOFF, () => 0), 0);
    assert.ok(backoffDelay(attempt, BACKOFF, () => 0.999999) <= bound);
    assert.ok(backoffDelay(attempt, BACKOFF, () => 0.999999) > bound * 0.99);
    for (let i = 0; i < 50; i += 1) {
      const delay = backoffDelay(attempt, BACKOFF);
      assert.ok(delay >= 0 && delay <= bound, `attempt ${attempt}: ${delay} outside [0, ${bound}]`);
    }
  }
});

test('the window doubles from the base and stops at the cap', () => {
  const windows = [0, 1, 2, 3, 4, 5, 6, 7, 100].map((n) => reconnectWindow('retry', n, BACKOFF));
  assert.deepEqual(windows, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(3, { baseMs: 10, capMs: 50 }, () => 0.5), 25);
});

test('"retry later" spreads over at least retryLaterMs; limits wait over the whole cap', () => {
  assert.equal(reconnectWindow('later', 0, BACKOFF), 2_000);
  assert.equal(reconnectWindow('later', 3, BACKOFF), 4_000);
  assert.equal(reconnectWindow('later', 9, BACKOFF), 30_000);
  assert.equal(reconnectWindow('later', 0, { ...BACKOFF, retryLaterMs: 60_000 }), 30_000);
  assert.equal(reconnectWindow('limit', 0, BACKOFF), 30_000);
});

test('close codes map to the reconnect policy', () => {
  assert.equal(closeAction(4001), 'reauth');
  for (const code of [1001, 1012, 1013]) assert.equal(closeAction(code), 'later');
  assert.equal(closeAction(1006, 503), 'later');
  assert.equal(closeAction(4009), 'limit');
  assert.equal(closeAction(4008), 'limit');
  for (const code of [1000, 1003, 1006, 1007, 1009, 1011, 4000, 4010]) assert.equal(closeAction(code), 'retry');
  assert.equal(closeAction(1006, 403), 'retry');
});

test('decodeJwt reads the claims without verifying, and refuses junk', () => {
  const claims = { sub: 'u', exp: 1_700_000_900, iat: 1_700_000_000, name: 'Zoë ✓' };
  assert.deepEqual(decodeJwt(fakeJwt(claims)), claims);
  assert.equal(decodeJwt('not a jwt'), null);
  assert.equal(decodeJwt('a.!!!.c'), null);
  assert.equal(decodeJwt(`a.${Buffer.from('"text"').toString('base64url')}.c`), null);
  assert.equal(decodeJwt(undefined), null);
});

test('refresh is due a margin before exp, half-way for short tokens, now when expired', () => {
  const now = 1_700_000_000_000;
  const token = (seconds) => fakeJwt({ exp: now / 1000 + seconds });
  assert.equal(refreshDelay(token(900), 60_000, now), 840_000);
  assert.equal(refreshDelay(token(60), 60_000, now), 30_000);
  assert.equal(refreshDelay(token(-5), 60_000, now), 0);
  assert.equal(refreshDelay(fakeJwt({ sub: 'no exp' }), 60_000, now), null);
  assert.equal(refreshDelay('opaque-token', 60_000, now), null);
});
