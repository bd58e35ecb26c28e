import { test } from 'node:test';
import assert from 'node:assert/strict';

import { StudyBuddyClient, StudyBuddyError, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL } from '../studybuddy.js';
import { FakeClock, fakeJwt, fakeNetwork, flush } from './fakes.js';
import { SERVER_FRAMES } from './frames.js';

const G = 'g-1';
const H = 'g-2';
const URL = 'ws://127.0.0.1:9/api/v1/ws';
const BACKOFF = { baseMs: 500, capMs: 30_000, retryLaterMs: 2_000 };
const EVENTS = [
  'state', 'ready', 'disconnected', 'subscribed', 'recovery', 'gap', 'unsubscribed', 'message',
  'ack', 'error', 'message_edited', 'message_deleted', 'presence', 'typing', 'read', 'member',
  'invite', 'assignment', 'notification',
];

/** A client on a fake network and clock, with its token calls and events recorded. */
function setup({ format = 'json', random = () => 0.5, lifetimeS = 900, ...options } = {}) {
  const net = fakeNetwork({ format });
  const clock = new FakeClock();
  const tokenCalls = [];
  const tokens = [];
  const getToken = async (context) => {
    tokenCalls.push(context);
    const token = fakeJwt({ sub: 'u-1', exp: clock.now() / 1000 + lifetimeS, jti: `t${tokens.length}` });
    tokens.push(token);
    return token;
  };
  const client = new StudyBuddyClient({
    url: URL, getToken, WebSocket: net.WebSocket, clock, random, format, backoff: BACKOFF, ...options,
  });
  const events = [];
  for (const type of EVENTS) client.on(type, (payload) => events.push({ type, payload }));
  const seen = (type) => events.filter((e) => e.type === type).map((e) => e.payload);
  return { client, net, clock, tokenCalls, tokens, events, seen };
}

/** Open the current socket and answer `auth` with `ready`. */
async function handshake(net) {
  await flush();
  net.last.accept();
  net.last.deliver({ type: 'ready', user_id: 'u-1', session_id: `s${net.sockets.length}`, heartbeat_s: 20 });
  await flush();
}

async function connected(options) {
  const env = setup(options);
  const ready = env.client.connect();
  await handshake(env.net);
  await ready;
  return env;
}

/** Answer the client's last `subscribe` for `groupId`: replayed messages first, then `subscribed`. */
async function answerSubscribe(socket, groupId, { lastSeq, recovered = false, replay = [] }) {
  const request = socket.frames('subscribe').filter((f) => f.group_id === groupId).at(-1);
  for (const seq of replay) socket.deliver(message(groupId, seq));
  socket.deliver({ type: 'subscribed', group_id: groupId, last_seq: lastSeq, online: ['u-1'], recovered, ref: request.ref });
  await flush();
  return request;
}

function message(groupId, seq, clientMsgId = `c-${seq}`) {
  return {
    type: 'message', group_id: groupId, seq, message_id: `m-${seq}`, author_id: 'u-2',
    body: `body ${seq}`, created_at: '2026-11-26T05:40:00.693000Z', client_msg_id: clientMsgId,
  };
}

function ack(frame, seq) {
  return {
    type: 'ack', client_msg_id: frame.client_msg_id, message_id: `m-${seq}`, seq,
    created_at: '2026-11-26T05:40:00.693000Z', ref: frame.ref,
  };
}

const seqs = (messages) => messages.map((m) => m.seq);

/**
 * Play the server's message rate (contract section 4) on `net`: a GCRA of `perSecond` with
 * `burst` per user, RATE_LIMITED over it, and 4008 after more than 10 of those within 10 s.
 * `drainedUntil`: the user's bucket is empty until then (another tab, REST sends).
 */
function rateLimitedServer(net, clock, { perSecond = 10, burst = 30, drainedUntil = 0 } = {}) {
  const intervalMs = 1000 / perSecond;
  const server = { tat: 0, seq: 0, strikes: [], limited: [], closed: [] };
  /** Spend one message of the user's rate (also for another tab's sends); false when over it. */
  server.take = (now) => {
    const tat = Math.max(server.tat, now);
    if (now < drainedUntil || tat - now > intervalMs * (burst - 1)) return false;
    server.tat = tat + intervalMs;
    return true;
  };
  net.serve = (frame, socket) => {
    if (frame.type !== 'send') return;
    const now = clock.now();
    if (!server.take(now)) {
      server.limited.push(frame.client_msg_id);
      server.strikes = [...server.strikes.filter((t) => now - t < 10_000), now];
      if (server.strikes.length > 10) {
        server.closed.push(now);
        socket.serverClose(4008, 'flooding');
      } else {
        socket.deliver({ type: 'error', code: 'RATE_LIMITED', message: 'Slow down', ref: frame.ref });
      }
      return;
    }
    server.seq += 1;
    socket.deliver(ack(frame, server.seq));
  };
  return server;
}

// --- connecting ---

test('connect asks for the JSON subprotocol, sends auth first and resolves with ready', async () => {
  const { client, net, tokens, tokenCalls, seen } = setup();
  const ready = client.connect();
  assert.equal(client.state, 'connecting');
  await handshake(net);
  assert.equal((await ready).user_id, 'u-1');
  assert.deepEqual(net.last.protocols, [JSON_SUBPROTOCOL]);
  assert.equal(net.last.binaryType, 'arraybuffer');
  assert.equal(net.last.url, URL);
  assert.deepEqual(net.last.frames(), [{ type: 'auth', token: tokens[0] }]);
  assert.deepEqual(tokenCalls, [{ force: false }]);
  assert.equal(client.state, 'ready');
  assert.equal(client.session.session_id, 's1');
  assert.deepEqual(seen('state').map((s) => s.state), ['connecting', 'authenticating', 'ready']);
});

test('MessagePack: binary frames both ways on studybuddy.v1.msgpack', async () => {
  const { client, net } = await connected({ format: 'msgpack' });
  assert.deepEqual(net.last.protocols, [MSGPACK_SUBPROTOCOL]);
  assert.ok(net.last.sent[0] instanceof Uint8Array);
  const subscribed = client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 7 });
  assert.equal((await subscribed).last_seq, 7);
  const sent = client.send(G, 'héllo ✓', { clientMsgId: 'k-1' });
  const frame = net.last.last('send');
  assert.deepEqual({ ...frame, ref: undefined }, { type: 'send', group_id: G, body: 'héllo ✓', client_msg_id: 'k-1', ref: undefined });
  net.last.deliver(ack(frame, 8));
  assert.equal((await sent).seq, 8);
});

test('the constructor refuses a missing token getter, URL, WebSocket or format', () => {
  const WebSocket = fakeNetwork().WebSocket;
  assert.throws(() => new StudyBuddyClient({ url: URL, WebSocket }), TypeError);
  assert.throws(() => new StudyBuddyClient({ url: 'not a url', getToken: async () => 't', WebSocket }), TypeError);
  assert.throws(() => new StudyBuddyClient({ url: URL, getToken: async () => 't', WebSocket, format: 'xml' }), TypeError);
  assert.throws(() => new StudyBuddyClient({ url: URL, getToken: async () => 't', WebSocket: 'nope' }), TypeError);
});

// --- requests and events ---

test('subscribe, unsubscribe and ping resolve by ref; error frames with a ref reject them', async () => {
  const { client, net, seen } = await connected();
  const first = client.subscribe(G);
  const request = await answerSubscribe(net.last, G, { lastSeq: 3 });
  assert.equal(request.since_seq, undefined);
  assert.equal((await first).last_seq, 3);
  assert.equal(await client.subscribe(G), await first); // already subscribed: no new frame
  assert.equal(net.last.frames('subscribe').length, 1);
  assert.equal(seen('subscribed').length, 1);

  const missing = client.subscribe(H);
  const ref = net.last.last('subscribe').ref;
  net.last.deliver({ type: 'error', code: 'NOT_FOUND', message: 'Not found', ref });
  await assert.rejects(missing, (e) => e instanceof StudyBuddyError && e.code === 'NOT_FOUND');
  assert.deepEqual(client.groups, [G]);

  const left = client.unsubscribe(G);
  const unsub = net.last.last('unsubscribe');
  net.last.deliver({ type: 'unsubscribed', group_id: G, ref: unsub.ref });
  assert.equal((await left).group_id, G);
  assert.deepEqual(client.groups, []);

  const again = client.unsubscribe(G);
  net.last.deliver({ type: 'error', code: 'NOT_SUBSCRIBED', message: 'Not subscribed', ref: net.last.last('unsubscribe').ref });
  await assert.rejects(again, { code: 'NOT_SUBSCRIBED' });

  const pong = client.ping();
  net.last.deliver({ type: 'pong', ref: net.last.last('ping').ref });
  assert.equal((await pong).type, 'pong');
});

test('every server event frame reaches its listeners, notification included', async () => {
  const { client, net, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 2 });
  const passThrough = SERVER_FRAMES.filter((f) => !['ready', 'subscribed', 'unsubscribed', 'ack', 'pong', 'message', 'error', 'presence_diff'].includes(f.type));
  for (const frame of passThrough) net.last.deliver(frame);
  for (const frame of passThrough) assert.ok(seen(frame.type).some((p) => p === frame || JSON.stringify(p) === JSON.stringify(frame)), frame.type);
  assert.equal(seen('notification')[0].notification.kind, 'invite.received');
  const frames = [];
  client.on('frame', (f) => frames.push(f.type));
  net.last.deliver({ type: 'future_frame', x: 1 });
  assert.deepEqual(frames, ['future_frame']);
});

test('errors without a ref and unreadable frames go to the error event', async () => {
  const { net, seen } = await connected();
  net.last.deliver({ type: 'error', code: 'RATE_LIMITED', message: 'Slow down' });
  net.last.onmessage({ data: '{not json' });
  net.last.onmessage({ data: '[1, 2]' });
  net.last.onmessage({ data: new Uint8Array([0xc0]).buffer });
  assert.deepEqual(seen('error').map((e) => e.code), ['RATE_LIMITED', 'DECODE_ERROR', 'DECODE_ERROR', 'DECODE_ERROR']);
});

test('a listener that throws does not stop the others', async () => {
  const { client, net, seen } = await connected();
  const thrown = [];
  const onUncaught = (error) => thrown.push(error.message);
  process.prependListener('uncaughtException', onUncaught);
  const originalListeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
  for (const l of originalListeners) process.removeListener('uncaughtException', l);
  try {
    client.on('presence', () => { throw new Error('listener bug'); });
    net.last.deliver({ type: 'presence', group_id: G, user_id: 'u-2', status: 'online' });
    await flush();
  } finally {
    process.removeListener('uncaughtException', onUncaught);
    for (const l of originalListeners) process.on('uncaughtException', l);
  }
  assert.equal(seen('presence').length, 1);
  assert.deepEqual(thrown, ['listener bug']);
});

// --- sends ---

test('send resolves with the ack matched by client_msg_id; the same id is one send', async () => {
  const { client, net, seen } = await connected({ newClientMsgId: () => 'generated-1' });
  const sent = client.send(G, 'hello');
  const again = client.send(G, 'hello', { clientMsgId: 'generated-1' });
  assert.equal(sent, again);
  const frames = net.last.frames('send');
  assert.equal(frames.length, 1);
  assert.equal(frames[0].client_msg_id, 'generated-1');
  assert.deepEqual(client.outbox, [{ type: 'send', group_id: G, body: 'hello', client_msg_id: 'generated-1' }]);
  net.last.deliver({ ...ack(frames[0], 1), ref: 999 }); // matched by client_msg_id, not ref
  assert.equal((await sent).seq, 1);
  net.last.deliver(ack(frames[0], 1)); // a repeated ack changes nothing
  assert.equal(seen('ack').length, 1);
  assert.deepEqual(client.outbox, []);
});

test('sends with bad fields are refused before they go out; server refusals reject', async () => {
  const { client, net } = await connected();
  await assert.rejects(client.send(G, '   '), { code: 'VALIDATION_ERROR' });
  await assert.rejects(client.send(G, 'x'.repeat(4001)), { code: 'VALIDATION_ERROR' });
  await assert.rejects(client.send(G, 'ok', { clientMsgId: 'x'.repeat(65) }), { code: 'VALIDATION_ERROR' });
  await assert.rejects(client.send('', 'ok'), { code: 'VALIDATION_ERROR' });
  const emoji = client.send(G, '🎓'.repeat(4000), { clientMsgId: 'emoji' }); // 4000 code points
  assert.equal(net.last.frames('send').length, 1);
  net.last.deliver({ type: 'error', code: 'NOT_FOUND', message: 'Not found', ref: net.last.last('send').ref });
  await assert.rejects(emoji, { code: 'NOT_FOUND' });
  assert.deepEqual(client.outbox, []);
});

test('RATE_LIMITED or SERVICE_UNAVAILABLE: the send is retried later with the same client_msg_id', async () => {
  const { client, net, clock } = await connected({ random: () => 1 });
  const sent = client.send(G, 'durable please', { clientMsgId: 'k-9' });
  const first = net.last.last('send');
  net.last.deliver({ type: 'error', code: 'SERVICE_UNAVAILABLE', message: 'Redis is down', ref: first.ref });
  await clock.advance(999);
  assert.equal(net.last.frames('send').length, 1);
  await clock.advance(1); // window for try 1: base * 2 = 1000 ms
  const second = net.last.last('send');
  assert.equal(second.client_msg_id, 'k-9');
  assert.notEqual(second.ref, first.ref);
  net.last.deliver(ack(second, 5));
  assert.equal((await sent).seq, 5);
});

test('100 sends in a row are paced to the server rate (burst 30, then 10/s): no 4008, all acked in 7 s', async () => {
  const { client, net, clock, seen } = await connected();
  const server = rateLimitedServer(net, clock);
  const start = clock.now();
  const acked = [];
  client.on('ack', () => acked.push(clock.now() - start));
  const sends = Array.from({ length: 100 }, (_, i) => client.send(G, `m${i}`, { clientMsgId: `k-${i}` }));
  await flush();
  assert.equal(acked.length, 30, 'the burst goes out at once');
  await clock.advance(1_000);
  assert.equal(acked.length, 40, 'then 10 per second');
  await clock.advance(6_000);
  assert.deepEqual((await Promise.all(sends)).map((a) => a.client_msg_id), sends.map((_, i) => `k-${i}`));
  assert.equal(acked.at(-1), 7_000);
  assert.deepEqual([server.limited, server.closed, seen('disconnected')], [[], [], []]);
  assert.equal(net.last.frames('send').length, 100, 'each sent once');
});

test('at most sendRate.maxInFlight (5) sends await an answer; sendRate: null is unpaced, 8 at most', async () => {
  const { client, net } = await connected();
  for (let i = 0; i < 12; i += 1) client.send(G, `m${i}`, { clientMsgId: `k-${i}` });
  assert.deepEqual(net.last.frames('send').map((f) => f.client_msg_id), ['k-0', 'k-1', 'k-2', 'k-3', 'k-4']);
  net.last.deliver(ack(net.last.frames('send')[1], 1));
  assert.equal(net.last.last('send').client_msg_id, 'k-5', 'an ack frees a place');
  assert.equal(net.last.frames('send').length, 6);

  const unpaced = await connected({ sendRate: null });
  const sends = Array.from({ length: 100 }, (_, i) => unpaced.client.send(G, `m${i}`));
  assert.equal(unpaced.net.last.frames('send').length, 8);
  rateLimitedServer(unpaced.net, unpaced.clock, { burst: 1000 });
  unpaced.net.last.frames('send').forEach((frame, i) => unpaced.net.last.deliver(ack(frame, 1000 + i)));
  await flush();
  assert.equal((await Promise.all(sends)).length, 100, 'all acked at once, without a timer');
});

test('sends awaiting an answer plus the RATE_LIMITED answers of the last 10 s stay at 8 or fewer', async () => {
  const { client, net, clock, seen } = await connected();
  const server = rateLimitedServer(net, clock);
  while (server.take(clock.now())); // another tab spent the burst...
  const sends = Array.from({ length: 40 }, (_, i) => client.send(G, `m${i}`, { clientMsgId: `k-${i}` }));
  const strikes = [];
  for (let step = 1; step <= 600; step += 1) {
    await clock.advance(100);
    if (step <= 300 && step % 5 !== 0) server.take(clock.now()); // ...and sends 8/s for 30 s
    const now = clock.now();
    strikes.push(server.strikes.filter((at) => now - at < 10_000).length);
  }
  assert.ok(Math.max(...strikes) <= 8, `at most 8 refusals within 10 s, got ${Math.max(...strikes)}`);
  assert.deepEqual([server.closed, seen('disconnected')], [[], []]);
  assert.equal((await Promise.all(sends)).length, 40);
});

test('RATE_LIMITED pauses the whole outbox (1 s, then 2 s...), then one send at a time until an ack', async () => {
  const { client, net, clock, seen } = await connected();
  const server = rateLimitedServer(net, clock, { drainedUntil: clock.now() + 2_500 }); // used up elsewhere
  const sends = Array.from({ length: 10 }, (_, i) => client.send(G, `m${i}`, { clientMsgId: `k-${i}` }));
  const sentAt = (from, to) => net.last.frames('send').slice(from, to).map((f) => f.client_msg_id);
  await flush();
  assert.deepEqual(server.limited, ['k-0', 'k-1', 'k-2', 'k-3', 'k-4'], 'the sends in flight');
  await clock.advance(999);
  assert.equal(net.last.frames('send').length, 5, 'nothing during the pause');
  await clock.advance(1);
  assert.deepEqual(sentAt(5), ['k-0'], 'after 1 s: the oldest, alone');
  await clock.advance(1_999);
  assert.equal(net.last.frames('send').length, 6, 'refused again: a 2 s pause');
  await clock.advance(1);
  assert.deepEqual(sentAt(6, 7), ['k-0']);
  await clock.advance(1_000);
  assert.deepEqual((await Promise.all(sends)).map((a) => a.client_msg_id), sends.map((_, i) => `k-${i}`));
  assert.equal(server.strikes.length, 6);
  assert.deepEqual([server.closed, seen('disconnected')], [[], []]);
  assert.deepEqual(client.outbox, []);
});

test('the send pacing carries over a reconnect: a full outbox resends at the server rate', async () => {
  const { client, net, clock, seen } = await connected();
  const server = rateLimitedServer(net, clock);
  for (let i = 0; i < 45; i += 1) client.send(G, `m${i}`, { clientMsgId: `k-${i}` });
  await flush();
  assert.equal(client.outbox.length, 15);
  net.last.serverClose(1006);
  await clock.advance(250); // random 0.5 of the first 500 ms window
  await handshake(net);
  await clock.advance(1_500);
  assert.deepEqual([server.limited, server.closed, seen('disconnected').length], [[], [], 1]);
  assert.deepEqual(client.outbox, []);
});

// --- reconnecting ---

test('reconnect delays are full jitter within [0, min(cap, base * 2^n)] and reset after ready', async () => {
  const { client, net, clock, seen } = setup({ random: () => 0.999 });
  client.connect();
  await flush();
  for (let n = 0; n < 9; n += 1) {
    net.last.refuse(502);
    const { delayMs, action } = seen('disconnected').at(-1);
    const bound = Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** n);
    assert.equal(action, 'retry');
    assert.ok(delayMs <= bound && delayMs >= bound * 0.99, `attempt ${n}: ${delayMs} vs ${bound}`);
    assert.equal(client.state, 'reconnecting');
    const sockets = net.sockets.length;
    await clock.advance(delayMs - 1);
    assert.equal(net.sockets.length, sockets, 'not before the delay');
    await clock.advance(1);
    assert.equal(net.sockets.length, sockets + 1, 'a new socket after the delay');
  }
  await handshake(net);
  net.last.serverClose(1006);
  assert.ok(seen('disconnected').at(-1).delayMs <= BACKOFF.baseMs, 'the attempt count starts over after ready');
});

test('reconnectNow() skips the backoff wait once; a failure then waits a grown window', async () => {
  const { client, net, clock, seen } = setup({ random: () => 0.999 });
  assert.equal(client.reconnectNow(), false, 'nothing to skip before connect()');
  client.connect();
  await flush();
  net.last.refuse(502);
  await clock.advance(seen('disconnected')[0].delayMs);
  net.last.serverClose(1006);
  const before = net.sockets.length;
  assert.ok(seen('disconnected')[1].delayMs > 990, 'the second wait is the grown window');
  assert.equal(client.reconnectNow(), true);
  await flush();
  assert.equal(net.sockets.length, before + 1, 'a new socket at once');
  assert.equal(client.reconnectNow(), false, 'already connecting');
  net.last.serverClose(1006);
  assert.ok(seen('disconnected')[2].delayMs > 1_980, 'the attempt count was kept');
  await clock.advance(seen('disconnected')[2].delayMs);
  await handshake(net);
  assert.equal(client.state, 'ready');
  assert.equal(client.reconnectNow(), false, 'nothing to skip when ready');
  client.close();
  assert.equal(client.reconnectNow(), false, 'nothing to skip once closed');
});

test('retry-later answers (1001, 1012, 1013, HTTP 503) wait at least retryLaterMs windows', async () => {
  const { client, net, clock, seen } = setup({ random: () => 0.999 });
  client.connect();
  await flush();
  net.last.refuse(503);
  assert.deepEqual(
    [seen('disconnected')[0].action, seen('disconnected')[0].httpStatus],
    ['later', 503],
  );
  assert.ok(seen('disconnected')[0].delayMs > 1_990 && seen('disconnected')[0].delayMs <= 2_000);
  for (const code of [1001, 1012, 1013]) {
    await clock.advance(60_000);
    await handshake(net);
    net.last.serverClose(code, 'restarting');
    const event = seen('disconnected').at(-1);
    assert.equal(event.action, 'later');
    assert.ok(event.delayMs > 1_990 && event.delayMs <= 2_000, `${code}: ${event.delayMs}`);
  }
});

test('4009 (connection limit) and 4008 (flooding) wait over the whole cap', async () => {
  const { client, net, clock, seen } = setup({ random: () => 0.5 });
  client.connect();
  await flush();
  net.last.accept();
  net.last.serverClose(4009, 'too many connections');
  assert.deepEqual([seen('disconnected')[0].action, seen('disconnected')[0].delayMs], ['limit', 15_000]);
  await clock.advance(15_000);
  await handshake(net);
  net.last.serverClose(4008, 'flooding');
  assert.equal(seen('disconnected').at(-1).delayMs, 15_000);
});

test('4001: the next connection asks for a fresh token; repeated refusals stop the client', async () => {
  const { client, net, clock, tokenCalls, seen } = setup({ maxAuthFailures: 2 });
  const ready = client.connect();
  await handshake(net);
  await ready;
  net.last.serverClose(4001, 'token expired');
  assert.equal(seen('disconnected').at(-1).action, 'reauth');
  await clock.advance(1_000); // the delays are 250 and 500 ms (random 0.5)
  assert.deepEqual(tokenCalls.at(-1), { force: true });
  for (let i = 0; i < 2; i += 1) {
    net.last.accept();
    net.last.serverClose(4001, 'invalid or expired token');
    await clock.advance(1_000);
  }
  assert.equal(client.state, 'closed');
  assert.equal(seen('disconnected').at(-1).delayMs, null);
  assert.equal(net.sockets.length, 3, 'the socket refused after ready, then 2 refusals in a row');
});

test('maxAuthFailures (default 3): exactly 3 refusals before any ready stop the client', async () => {
  const { client, net, clock, seen } = setup();
  const ready = client.connect();
  for (let i = 0; i < 3; i += 1) {
    await flush();
    net.last.accept();
    net.last.serverClose(4001, 'invalid or expired token');
    await clock.advance(1_000);
  }
  assert.equal(client.state, 'closed');
  assert.deepEqual(seen('disconnected').map((d) => d.action), ['reauth', 'reauth', 'reauth']);
  assert.deepEqual(seen('disconnected').map((d) => d.delayMs === null), [false, false, true]);
  await assert.rejects(ready, { code: 'UNAUTHORIZED', message: 'the server refused the token 3 times' });
  await clock.advance(60_000);
  assert.equal(net.sockets.length, 3);
});

test('a client stopped by auth failures rejects connect waiters and resumes on connect()', async () => {
  const { client, net, clock } = setup({ maxAuthFailures: 0 });
  const ready = client.connect();
  await flush();
  net.last.accept();
  net.last.serverClose(4001, 'bad token');
  await assert.rejects(ready, { code: 'UNAUTHORIZED' });
  assert.equal(client.state, 'closed');
  await clock.advance(60_000);
  assert.equal(net.sockets.length, 1);
  const resumed = client.connect();
  await handshake(net);
  assert.equal((await resumed).type, 'ready');
});

test('a token getter that throws is reported and retried with backoff', async () => {
  const net = fakeNetwork();
  const clock = new FakeClock();
  let calls = 0;
  const getToken = async () => {
    calls += 1;
    if (calls === 1) throw new Error('refresh endpoint down');
    return fakeJwt({ exp: clock.now() / 1000 + 900 });
  };
  const client = new StudyBuddyClient({ url: URL, getToken, WebSocket: net.WebSocket, clock, random: () => 1 });
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  const ready = client.connect();
  await flush();
  assert.deepEqual(errors, ['TOKEN_ERROR']);
  assert.equal(net.sockets.length, 0);
  await clock.advance(500);
  await handshake(net);
  assert.equal((await ready).type, 'ready');
});

test('a WebSocket constructor that throws is reported and retried', async () => {
  const net = fakeNetwork();
  const clock = new FakeClock();
  let refusals = 1;
  class Blocked extends net.WebSocket {
    constructor(...args) {
      if (refusals-- > 0) throw new Error('SecurityError: refused by the Content-Security-Policy');
      super(...args);
    }
  }
  const client = new StudyBuddyClient({ url: URL, getToken: async () => 'a.b.c', WebSocket: Blocked, clock, random: () => 1 });
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  const ready = client.connect();
  await flush();
  assert.deepEqual(errors, ['CONNECT_FAILED']);
  assert.equal(client.state, 'reconnecting');
  await clock.advance(500);
  await handshake(net);
  assert.equal((await ready).type, 'ready');
});

test('an expired cached token is replaced before dialling', async () => {
  const net = fakeNetwork();
  const clock = new FakeClock();
  const calls = [];
  const getToken = async ({ force }) => {
    calls.push(force);
    return fakeJwt({ exp: clock.now() / 1000 + (force ? 900 : -10) });
  };
  const client = new StudyBuddyClient({ url: URL, getToken, WebSocket: net.WebSocket, clock });
  client.connect();
  await flush();
  assert.deepEqual(calls, [false, true]);
  client.close();
});

test('no ready within connectTimeoutMs (15 s) of the attempt: dropped and retried with backoff', async () => {
  const { client, net, clock, seen } = setup();
  const ready = client.connect();
  await flush();
  const silent = net.last; // the node accepts TCP but never answers the handshake
  await clock.advance(14_999);
  assert.deepEqual([client.state, seen('disconnected')], ['connecting', []]);
  await clock.advance(1);
  assert.deepEqual(seen('disconnected'), [
    { code: 1006, reason: 'no ready within 15000 ms', httpStatus: null, action: 'retry', delayMs: 250 },
  ]);
  assert.equal(silent.readyState, 3);
  await clock.advance(250);
  assert.equal(net.sockets.length, 2);
  net.last.accept(); // auth goes out, ready never comes
  assert.equal(client.state, 'authenticating');
  await clock.advance(14_999);
  assert.equal(seen('disconnected').length, 1);
  await clock.advance(1);
  assert.equal(seen('disconnected')[1].reason, 'no ready within 15000 ms');
  assert.equal(client.state, 'reconnecting');
  await clock.advance(seen('disconnected')[1].delayMs);
  await handshake(net);
  assert.equal((await ready).type, 'ready');
  await clock.advance(60_000);
  assert.equal(seen('disconnected').length, 2, 'no timeout once ready');
});

test('connectTimeoutMs also bounds the token getter; 0 turns the timeout off', async () => {
  const net = fakeNetwork();
  const clock = new FakeClock();
  const answers = [];
  const getToken = () => new Promise((resolve) => answers.push(resolve));
  const client = new StudyBuddyClient({
    url: URL, getToken, WebSocket: net.WebSocket, clock, random: () => 0.5, connectTimeoutMs: 5_000,
  });
  const errors = [];
  client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
  const ready = client.connect();
  await clock.advance(5_000);
  assert.deepEqual(errors, ['TOKEN_ERROR: getToken did not answer within 5000 ms']);
  assert.equal(client.state, 'reconnecting');
  await clock.advance(250);
  assert.equal(answers.length, 2, 'asked again');
  answers[0]('late.token.ignored');
  await flush();
  assert.equal(net.sockets.length, 0, 'the late answer opens nothing');
  answers[1]('a.b.c');
  await handshake(net);
  assert.equal((await ready).type, 'ready');
  assert.equal(net.sockets.length, 1);

  const patient = setup({ connectTimeoutMs: 0 });
  patient.client.connect();
  await patient.clock.advance(600_000);
  assert.deepEqual([patient.client.state, patient.net.sockets.length], ['connecting', 1]);
});

// --- recovery, dedupe, gaps ---

test('messages are delivered once per seq, in order', async () => {
  const { client, net, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 0 });
  for (const seq of [1, 2, 2, 1, 3, 3]) net.last.deliver(message(G, seq));
  assert.deepEqual(seqs(seen('message')), [1, 2, 3]);
  assert.equal(client.lastSeq(G), 3);
  net.last.deliver(message('unknown-group', 1));
  assert.equal(seen('message').length, 3);
});

test('a gap (seq > last + 1) re-subscribes with since_seq and fills the hole in order', async () => {
  const { client, net, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 2 });
  net.last.deliver(message(G, 3));
  net.last.deliver(message(G, 5)); // 4 went missing
  net.last.deliver(message(G, 6)); // still waiting for the replay: dropped, it will come again
  assert.deepEqual(seqs(seen('message')), [3]);
  assert.deepEqual(seen('gap'), [{ group_id: G, expected_seq: 4, seq: 5 }]);
  const request = await answerSubscribe(net.last, G, { lastSeq: 6, recovered: true, replay: [4, 5, 6] });
  assert.equal(request.since_seq, 3);
  assert.deepEqual(seqs(seen('message')), [3, 4, 5, 6]);
  assert.deepEqual(seen('recovery'), [{ group_id: G, recovered: true, since_seq: 3, last_seq: 6 }]);
  net.last.deliver(message(G, 7));
  assert.deepEqual(seqs(seen('message')), [3, 4, 5, 6, 7]);
});

test('a replay that still leaves a hole is asked for again, then reported as not recovered', async () => {
  const { client, net, seen } = await connected();
  client.subscribe(G, { sinceSeq: 10 });
  const first = await answerSubscribe(net.last, G, { lastSeq: 12, recovered: true, replay: [11] });
  assert.equal(first.since_seq, 10);
  for (let i = 0; i < 3; i += 1) {
    assert.equal(net.last.last('subscribe').since_seq, 11); // asked again
    await answerSubscribe(net.last, G, { lastSeq: 12, recovered: true });
  }
  assert.deepEqual(seen('recovery'), [{ group_id: G, recovered: false, since_seq: 11, last_seq: 12 }]);
  assert.equal(client.lastSeq(G), 12);
});

test('after a reconnect every group is re-subscribed with since_seq = the last seq seen', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  client.subscribe(H, { sinceSeq: 40 });
  await answerSubscribe(net.last, G, { lastSeq: 5 });
  await answerSubscribe(net.last, H, { lastSeq: 41, recovered: true, replay: [41] });
  net.last.deliver(message(G, 6));
  net.last.serverClose(1012, 'restarting');
  await clock.advance(BACKOFF.capMs);
  await handshake(net);
  const resubscribes = net.last.frames('subscribe');
  assert.deepEqual(resubscribes.map((f) => [f.group_id, f.since_seq]), [[G, 6], [H, 41]]);
  await answerSubscribe(net.last, G, { lastSeq: 8, recovered: true, replay: [5, 6, 7, 8] });
  await answerSubscribe(net.last, H, { lastSeq: 41, recovered: true });
  assert.deepEqual(seqs(seen('message').filter((m) => m.group_id === G)), [6, 7, 8]);
  assert.deepEqual(seen('recovery').map((r) => [r.group_id, r.recovered, r.since_seq]), [[H, true, 40], [G, true, 6], [H, true, 41]]);
});

test('recovered: false is surfaced so the app reloads history, and live messages continue', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 5 });
  net.last.serverClose(1006);
  await clock.advance(BACKOFF.capMs);
  await handshake(net);
  await answerSubscribe(net.last, G, { lastSeq: 2000, recovered: false });
  assert.deepEqual(seen('recovery'), [{ group_id: G, recovered: false, since_seq: 5, last_seq: 2000 }]);
  assert.equal(client.lastSeq(G), 2000);
  net.last.deliver(message(G, 2001));
  assert.deepEqual(seqs(seen('message')), [2001]);
});

test('a sinceSeq past the last seq of the group: lastSeq drops to last_seq and live messages arrive', async () => {
  const { client, net, seen } = await connected();
  client.subscribe(G, { sinceSeq: 50 });
  await answerSubscribe(net.last, G, { lastSeq: 3, recovered: false });
  assert.deepEqual(seen('recovery'), [{ group_id: G, recovered: false, since_seq: 50, last_seq: 3 }]);
  assert.equal(client.lastSeq(G), 3);
  for (const seq of [4, 5, 6]) net.last.deliver(message(G, seq));
  assert.deepEqual(seqs(seen('message')), [4, 5, 6]);
});

test('a group log behind the client after a reconnect (restored): the client follows the server', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 10 });
  net.last.serverClose(1006);
  await clock.advance(250);
  await handshake(net);
  const request = await answerSubscribe(net.last, G, { lastSeq: 7, recovered: false });
  assert.equal(request.since_seq, 10);
  assert.deepEqual(seen('recovery'), [{ group_id: G, recovered: false, since_seq: 10, last_seq: 7 }]);
  assert.equal(client.lastSeq(G), 7);
  net.last.deliver(message(G, 8));
  assert.deepEqual(seqs(seen('message')), [8]);
  net.last.serverClose(1006);
  await clock.advance(250);
  await handshake(net);
  assert.equal(net.last.last('subscribe').since_seq, 8);
});

test('a subscription the server ends (kicked) is forgotten, not renewed', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 1 });
  net.last.deliver({ type: 'unsubscribed', group_id: G });
  assert.deepEqual(seen('unsubscribed'), [{ group_id: G }]);
  assert.deepEqual(client.groups, []);
  net.last.serverClose(1006);
  await clock.advance(BACKOFF.capMs);
  await handshake(net);
  assert.deepEqual(net.last.frames('subscribe'), []);
});

test('a re-subscribe refused after a reconnect (removed while away) emits unsubscribed', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 1 });
  net.last.serverClose(1006);
  await clock.advance(BACKOFF.capMs);
  await handshake(net);
  net.last.deliver({ type: 'error', code: 'NOT_FOUND', message: 'Not found', ref: net.last.last('subscribe').ref });
  assert.equal(seen('unsubscribed')[0].group_id, G);
  assert.equal(seen('unsubscribed')[0].error.code, 'NOT_FOUND');
  assert.deepEqual(client.groups, []);
});

test('a subscribe refused with SERVICE_UNAVAILABLE is tried again', async () => {
  const { client, net, clock } = await connected({ random: () => 1 });
  const subscribed = client.subscribe(G);
  net.last.deliver({ type: 'error', code: 'SERVICE_UNAVAILABLE', message: 'down', ref: net.last.last('subscribe').ref });
  await clock.advance(1_000);
  assert.equal(net.last.frames('subscribe').length, 2);
  await answerSubscribe(net.last, G, { lastSeq: 0 });
  assert.equal((await subscribed).last_seq, 0);
});

// --- the outbox across reconnects ---

test('an unacked send is resent after a reconnect with the same client_msg_id, delivered once', async () => {
  const { client, net, clock, seen } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 0 });
  const sent = client.send(G, 'did anyone solve 4b?', { clientMsgId: 'k-17' });
  const first = net.last.last('send');
  net.last.deliver(message(G, 1, 'k-17')); // fanned out, then the socket died before the ack
  net.last.serverClose(1006);
  assert.deepEqual(client.outbox.map((f) => f.client_msg_id), ['k-17']);
  await clock.advance(BACKOFF.capMs);
  await handshake(net);
  const order = net.last.frames().map((f) => f.type);
  assert.deepEqual(order, ['auth', 'subscribe', 'send'], 'resubscribe before resending');
  const resent = net.last.last('send');
  assert.equal(resent.client_msg_id, 'k-17');
  assert.equal(resent.body, first.body);
  await answerSubscribe(net.last, G, { lastSeq: 1, recovered: true, replay: [1] }); // replay repeats seq 1
  net.last.deliver(ack(resent, 1)); // the server answers a repeated client_msg_id with the first ack
  assert.equal((await sent).seq, 1);
  assert.deepEqual(seqs(seen('message')), [1]);
  assert.equal(seen('ack').length, 1);
  assert.deepEqual(client.outbox, []);
});

test('sends made while disconnected wait in the outbox and go out in order after resubscribing', async () => {
  const { client, net, clock } = await connected();
  client.subscribe(G);
  await answerSubscribe(net.last, G, { lastSeq: 0 });
  net.last.serverClose(1001, 'going away');
  const a = client.send(G, 'one', { clientMsgId: 'a' });
  const b = client.send(G, 'two', { clientMsgId: 'b' });
  client.markRead(G, 3);
  client.markRead(G, 2);
  assert.equal(client.typing(G), false);
  assert.equal(client.state, 'reconnecting');
  await clock.advance(BACKOFF.capMs);
  assert.equal(client.state, 'connecting');
  net.last.accept();
  assert.equal(client.state, 'authenticating');
  net.last.deliver({ type: 'ready', user_id: 'u-1', session_id: 's2', heartbeat_s: 20 });
  assert.deepEqual(
    net.last.frames().map((f) => [f.type, f.client_msg_id ?? f.seq ?? f.group_id ?? '']),
    [['auth', ''], ['subscribe', G], ['send', 'a'], ['send', 'b'], ['read', 3]],
  );
  for (const frame of net.last.frames('send')) net.last.deliver(ack(frame, frame.client_msg_id === 'a' ? 1 : 2));
  assert.deepEqual([(await a).seq, (await b).seq], [1, 2]);
});

test('close() rejects what is pending, closes with 1000 and never reconnects', async () => {
  const { client, net, clock } = await connected();
  const pending = client.send(G, 'never acked');
  const subscribing = client.subscribe(G);
  const socket = net.last;
  client.close();
  await assert.rejects(pending, { code: 'CLOSED' });
  await assert.rejects(subscribing, { code: 'CLOSED' });
  assert.deepEqual(socket.closedWith, { code: 1000, reason: 'client closed' });
  assert.equal(client.state, 'closed');
  await clock.advance(120_000);
  assert.equal(net.sockets.length, 1);
  assert.deepEqual(clock.pending(), []);
});

test('close() while the socket is still connecting closes it quietly', async () => {
  const { client, net, clock } = setup();
  const ready = client.connect();
  await flush();
  assert.equal(net.last.readyState, 0);
  client.close();
  await assert.rejects(ready, { code: 'CLOSED' });
  assert.equal(net.last.readyState, 3);
  await clock.advance(60_000);
  assert.equal(net.sockets.length, 1);
});

test('close() while the token getter is still running opens nothing', async () => {
  const net = fakeNetwork();
  let release;
  const getToken = () => new Promise((resolve) => { release = resolve; });
  const client = new StudyBuddyClient({ url: URL, getToken, WebSocket: net.WebSocket });
  const ready = client.connect();
  client.close();
  release('a.b.c');
  await flush();
  await assert.rejects(ready, { code: 'CLOSED' });
  assert.equal(net.sockets.length, 0);
});

test('close() on a half-open connection terminates the socket when the close handshake hangs', async () => {
  const { client, net, clock } = await connected();
  const socket = net.last;
  socket.freeze(); // ws would wait 30 s for the close frame, keeping Node alive
  client.close();
  assert.equal(client.state, 'closed');
  assert.deepEqual([socket.closedWith, socket.readyState, socket.terminated], [{ code: 1000, reason: 'client closed' }, 2, false]);
  await clock.advance(999);
  assert.equal(socket.terminated, false);
  await clock.advance(1);
  assert.deepEqual([socket.readyState, socket.terminated], [3, true]);
  assert.deepEqual(clock.pending(), []);
});

test('a socket without terminate() (a browser WebSocket) is only closed', async () => {
  const net = fakeNetwork();
  class BrowserWebSocket extends net.WebSocket {
    terminate = undefined;
  }
  const clock = new FakeClock();
  const client = new StudyBuddyClient({ url: URL, getToken: async () => 'a.b.c', WebSocket: BrowserWebSocket, clock });
  const ready = client.connect();
  await handshake(net);
  await ready;
  net.last.freeze();
  client.close();
  assert.deepEqual([net.last.readyState, clock.pending()], [2, []]);
});

// --- token refresh ---

test('refresh is sent before the token expires, with a new token, and scheduled again', async () => {
  // pings off, so that the refresh timer is the only one
  const { net, clock, tokens, tokenCalls } = await connected({ refreshMarginMs: 60_000, pingIntervalMs: 0 });
  assert.deepEqual(clock.pending(), [840_000]);
  await clock.advance(839_999);
  assert.deepEqual(net.last.frames('refresh'), []);
  await clock.advance(1);
  const refresh = net.last.last('refresh');
  assert.equal(refresh.token, tokens[1]);
  assert.deepEqual(tokenCalls.at(-1), { force: true });
  net.last.deliver({ type: 'ready', user_id: 'u-1', session_id: 's1', heartbeat_s: 20, ref: refresh.ref });
  await flush();
  assert.deepEqual(clock.pending(), [840_000]);
  await clock.advance(840_000);
  assert.equal(net.last.frames('refresh').length, 2);
});

test('a refresh that fails is retried; a socket closed with 4001 reconnects with a new token', async () => {
  const { client, net, clock, seen } = await connected({ lifetimeS: 120, refreshRetryMs: 5_000 });
  await clock.advance(60_000); // half-way for a short-lived token
  const refresh = net.last.last('refresh');
  net.last.deliver({ type: 'error', code: 'SERVICE_UNAVAILABLE', message: 'down', ref: refresh.ref });
  await flush();
  assert.equal(seen('error').at(-1).code, 'REFRESH_FAILED');
  await clock.advance(5_000);
  assert.equal(net.last.frames('refresh').length, 2);
  net.last.serverClose(4001, 'token expired');
  assert.equal(client.state, 'reconnecting');
  assert.equal(seen('disconnected').at(-1).action, 'reauth');
});

test('refreshToken() refuses when not connected', async () => {
  const { client } = setup();
  await assert.rejects(client.refreshToken(), { code: 'NOT_CONNECTED' });
  await assert.rejects(client.ping(), { code: 'NOT_CONNECTED' });
});

// --- ping, typing ---

test('ping frames at pingIntervalMs: no pong within the timeout drops and reconnects', async () => {
  const { client, net, clock, seen } = await connected({ pingIntervalMs: 10_000, pingTimeoutMs: 3_000 });
  net.answerPings = false;
  await clock.advance(10_000);
  const ping = net.last.last('ping');
  net.last.deliver({ type: 'pong', ref: ping.ref });
  await flush();
  await clock.advance(10_000);
  assert.equal(net.last.frames('ping').length, 2);
  const socket = net.last;
  await clock.advance(3_000);
  assert.equal(seen('disconnected').at(-1).reason, 'no pong');
  assert.equal(socket.closedWith.code, 1000);
  assert.equal(client.state, 'reconnecting');
});

test('by default a ping goes out every heartbeat_s / 2, so a frozen node is noticed', async () => {
  const { client, net, clock, seen } = await connected(); // heartbeat_s: 20
  await clock.advance(60_000);
  assert.equal(net.last.frames('ping').length, 6, 'every 10 s, each answered');
  assert.equal(client.state, 'ready');
  const socket = net.last;
  socket.freeze();
  await clock.advance(10_000);
  assert.equal(socket.frames('ping').length, 7);
  await clock.advance(9_999);
  assert.equal(client.state, 'ready');
  await clock.advance(1); // no pong within pingTimeoutMs (10 s)
  assert.equal(seen('disconnected').at(-1).reason, 'no pong');
  assert.equal(client.state, 'reconnecting');
  await clock.advance(1_000);
  assert.equal(socket.terminated, true, 'not left to the close handshake');
});

test('the default ping interval follows ready.heartbeat_s; pingIntervalMs: 0 turns pings off', async () => {
  const { client, net, clock } = setup();
  client.connect();
  await flush();
  net.last.accept();
  net.last.deliver({ type: 'ready', user_id: 'u-1', session_id: 's1', heartbeat_s: 30 });
  await clock.advance(14_999);
  assert.equal(net.last.frames('ping').length, 0);
  await clock.advance(1);
  assert.equal(net.last.frames('ping').length, 1);

  const off = await connected({ pingIntervalMs: 0 });
  off.net.last.freeze();
  await off.clock.advance(120_000);
  assert.deepEqual([off.net.last.frames('ping'), off.client.state], [[], 'ready']);
});

test('typing is throttled to one frame per interval per group', async () => {
  const { client, net, clock } = await connected({ typingIntervalMs: 2_000 });
  assert.equal(client.typing(G), true);
  assert.equal(client.typing(G), false);
  assert.equal(client.typing(H), true);
  await clock.advance(2_000);
  assert.equal(client.typing(G), true);
  assert.deepEqual(net.last.frames('typing').map((f) => f.group_id), [G, H, G]);
});

test('listeners can be removed', async () => {
  const { client, net } = await connected();
  const got = [];
  const off = client.on('presence', (p) => got.push(p));
  const frame = { type: 'presence', group_id: G, user_id: 'u-2', status: 'offline' };
  net.last.deliver(frame);
  off();
  net.last.deliver(frame);
  assert.equal(got.length, 1);
});

test('subscribe asks for presence diffs; a diff is one presence_diff and one presence per change', async () => {
  const { client, net } = await connected();
  const subscribing = client.subscribe(G);
  await flush();
  const [frame] = net.last.frames('subscribe');
  assert.equal(frame.presence, 'diff');
  net.last.deliver({ type: 'subscribed', group_id: G, last_seq: 0, online: [], recovered: false, ref: frame.ref });
  await subscribing;
  const diffs = [];
  const changes = [];
  client.on('presence_diff', (d) => diffs.push(d));
  client.on('presence', (p) => changes.push(`${p.user_id}:${p.status}`));
  net.last.deliver({ type: 'presence_diff', group_id: G, online: ['u-2', 'u-3'], offline: ['u-4'] });
  assert.equal(diffs.length, 1);
  assert.deepEqual(changes, ['u-2:online', 'u-3:online', 'u-4:offline']);
});
