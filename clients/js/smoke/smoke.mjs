#!/usr/bin/env node
/**
 * Smoke test of the JS SDK against a real node: two users, one group, two clients (one JSON,
 * one MessagePack). Checks delivery and acks, presence and typing, a token refresh, a dropped
 * socket that recovers with since_seq and resends its outbox, and client_msg_id dedupe.
 *
 *   node smoke.mjs [http://127.0.0.1:8000]      (or STUDYBUDDY_URL)
 *
 * The node must allow 6 auth requests from this IP (RATE_LIMIT_AUTH, default 5/min).
 * Prints one JSON summary line and exits 0, or prints the failure and exits 1.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

import { StudyBuddyClient } from '../studybuddy.js';

const BASE = (process.argv[2] ?? process.env.STUDYBUDDY_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '');
const WS_URL = `${BASE.replace(/^http/, 'ws')}/api/v1/ws`;
const TIMEOUT_MS = 15_000;

/** Fail with a message. */
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Wait until `predicate()` is truthy. */
async function until(predicate, label, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Call the REST API; returns the parsed body, throwing on an unexpected status. */
async function api(method, path, { token, body, headers = {}, expect = [200, 201] } = {}) {
  const response = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: {
      ...(body ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!expect.includes(response.status)) {
    throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  }
  return { data: text ? JSON.parse(text).data : null, cookies: cookiesOf(response) };
}

function cookiesOf(response) {
  return Object.fromEntries(
    response.headers.getSetCookie().map((line) => line.split(';')[0].split('=')).map(([k, ...v]) => [k, v.join('=')]),
  );
}

/** Register and sign in; returns the user with a token getter that refreshes via the cookie. */
async function account(name) {
  const suffix = randomUUID().slice(0, 8);
  const credentials = { email: `${name}.${suffix}@example.com`, password: `smoke-${randomUUID()}` };
  await api('POST', '/auth/register', {
    body: { ...credentials, username: `${name}_${suffix}`, display_name: `${name} smoke` },
  });
  const login = await api('POST', '/auth/login', { body: credentials });
  const user = { id: login.data.user.id, token: login.data.access_token, cookies: login.cookies, refreshes: 0 };
  user.gate = null; // a promise that holds the next connection back while the test wants it away
  user.getToken = async ({ force }) => {
    await user.gate;
    if (!force) return user.token;
    const refreshed = await api('POST', '/auth/refresh', {
      headers: {
        Cookie: Object.entries(user.cookies).map(([k, v]) => `${k}=${v}`).join('; '),
        'X-CSRF-Token': user.cookies.csrf_token,
      },
    });
    Object.assign(user.cookies, refreshed.cookies);
    user.token = refreshed.data.access_token;
    user.refreshes += 1;
    return user.token;
  };
  return user;
}

/** An SDK client whose sockets the test can reach (to drop one), recording what it receives. */
function sdkClient(user, format) {
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = new StudyBuddyClient({
    url: WS_URL, getToken: user.getToken, WebSocket: TrackedWebSocket, format,
    backoff: { baseMs: 200, capMs: 2_000, retryLaterMs: 500 },
  });
  const seen = { messages: [], acks: [], presence: [], typing: [], recovery: [], disconnected: [], errors: [] };
  client.on('message', (m) => seen.messages.push(m));
  client.on('ack', (ack) => seen.acks.push(ack));
  client.on('presence', (p) => seen.presence.push(p));
  client.on('typing', (t) => seen.typing.push(t));
  client.on('recovery', (r) => seen.recovery.push(r));
  client.on('disconnected', (d) => seen.disconnected.push(d));
  client.on('error', (e) => seen.errors.push(`${e.code}: ${e.message}`));
  return { client, sockets, seen, user };
}

const seqs = (side) => side.seen.messages.map((m) => m.seq);

async function main() {
  const alice = await account('alice');
  const bob = await account('bob');
  const group = (await api('POST', '/study-groups', {
    token: alice.token, body: { name: `SDK smoke ${randomUUID().slice(0, 8)}`, visibility: 'public' },
  })).data;
  await api('POST', `/study-groups/${group.id}/join`, { token: bob.token });

  const a = sdkClient(alice, 'json');
  const b = sdkClient(bob, 'msgpack');
  const [readyA, readyB] = await Promise.all([a.client.connect(), b.client.connect()]);
  check(readyA.user_id === alice.id && readyB.user_id === bob.id, 'ready names each user');

  const subA = await a.client.subscribe(group.id);
  const subB = await b.client.subscribe(group.id);
  check(subA.last_seq === 0 && subA.online.includes(alice.id), 'first subscribe: last_seq 0, self online');
  check(subB.online.includes(alice.id) && subB.online.includes(bob.id), 'both online for bob');
  await until(() => a.seen.presence.some((p) => p.user_id === bob.id && p.status === 'online'), 'bob online at alice');

  const ack1 = await a.client.send(group.id, 'hello from alice <b>', { clientMsgId: 'alice-1' });
  check(ack1.seq === 1 && ack1.client_msg_id === 'alice-1', 'ack of the first message');
  await until(() => b.seen.messages.length === 1 && a.seen.messages.length === 1, 'message 1 on both sides');
  check(b.seen.messages[0].body === 'hello from alice &lt;b&gt;', 'the body arrives HTML-escaped');
  check(b.seen.messages[0].author_id === alice.id, 'author');

  check(b.client.typing(group.id), 'typing sent');
  await until(() => a.seen.typing.some((t) => t.user_id === bob.id), 'bob typing at alice');
  const ack2 = await b.client.send(group.id, 'hi alice (msgpack)');
  check(ack2.seq === 2, 'ack of the second message');
  await until(() => a.seen.messages.length === 2, 'message 2 at alice');

  const refreshed = await a.client.refreshToken();
  check(refreshed.user_id === alice.id && alice.refreshes === 1, 'refresh frame with a cookie-refreshed token');

  // Drop alice's socket and keep her away (her token getter waits) while both sides send.
  let comeBack;
  alice.gate = new Promise((resolve) => { comeBack = resolve; });
  a.sockets.at(-1).terminate();
  await until(() => a.seen.disconnected.length === 1, 'alice disconnected');
  const offline = a.client.send(group.id, 'sent while offline', { clientMsgId: 'alice-offline' });
  check(a.client.outbox.length === 1, 'the offline send waits in the outbox');
  for (let i = 0; i < 3; i += 1) await b.client.send(group.id, `missed ${i}`);
  alice.gate = null;
  comeBack();
  const ackOffline = await offline;
  check(ackOffline.seq === 6, `the offline send is acked after reconnecting (seq ${ackOffline.seq})`);
  await until(() => seqs(a).length === 6 && seqs(b).length === 6, 'six messages on both sides');
  check(a.seen.recovery.length === 1 && a.seen.recovery[0].recovered && a.seen.recovery[0].since_seq === 2, 'recovered with since_seq 2');
  check(a.sockets.length === 2, 'alice reconnected once');

  // The same client_msg_id again gets the first ack, and nothing new is delivered.
  const repeat = await a.client.send(group.id, 'hello again?', { clientMsgId: 'alice-1' });
  check(repeat.seq === 1 && repeat.message_id === ack1.message_id, 'a repeated client_msg_id gets the first ack');
  await a.client.ping();
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const side of [a, b]) {
    check(JSON.stringify(seqs(side)) === '[1,2,3,4,5,6]', `${side.user === alice ? 'alice' : 'bob'} saw ${seqs(side)}`);
  }
  check(a.seen.errors.length === 0 && b.seen.errors.length === 0, `no errors: ${[...a.seen.errors, ...b.seen.errors]}`);

  a.client.close();
  b.client.close();
  return {
    messages: seqs(a).length,
    acks: a.seen.acks.length + b.seen.acks.length,
    reconnects: a.sockets.length - 1,
    recovered: a.seen.recovery[0].recovered,
    refreshes: alice.refreshes,
  };
}

const watchdog = setTimeout(() => {
  console.error('smoke: FAILED: the whole run took over 60 s');
  process.exit(1);
}, 60_000);

main().then(
  (summary) => {
    clearTimeout(watchdog);
    console.log(JSON.stringify({ smoke: 'passed', url: BASE, ...summary }));
  },
  (error) => {
    console.error(`smoke: FAILED: ${error.stack ?? error}`);
    process.exit(1);
  },
);
