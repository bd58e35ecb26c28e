/**
 * StudyBuddy client SDK: one ES module, no build step, no runtime dependency.
 *
 * A {@link StudyBuddyClient} keeps one socket to `GET /api/v1/ws` alive: it authenticates,
 * refreshes the token before it expires, pings to notice a dead link, reconnects with
 * full-jitter exponential backoff, re-subscribes every group with `since_seq`, paces and resends
 * unacked messages with their `client_msg_id`, drops duplicate `message` frames and repairs
 * gaps. See docs/clients.md.
 * @module
 */

export const JSON_SUBPROTOCOL = 'studybuddy.v1.json';
export const MSGPACK_SUBPROTOCOL = 'studybuddy.v1.msgpack';
export const MAX_BODY_CHARS = 4000;
export const MAX_CLIENT_MSG_ID_CHARS = 64;

/** WebSocket close codes the server uses (contract section 4), plus 1006 and 1013. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNPARSEABLE: 4000,
  UNAUTHORIZED: 4001,
  FLOODING: 4008,
  CONNECTION_LIMIT: 4009,
  SLOW_CONSUMER: 4010,
});

/** Server frames handed to listeners as they are, under their own `type`. */
const PASS_THROUGH = new Set([
  'message_edited', 'message_deleted', 'presence', 'typing', 'read',
  'member', 'invite', 'assignment', 'notification',
]);

/** Error codes after which a send or subscribe is tried again (same `client_msg_id`). */
const TRANSIENT_ERRORS = new Set(['RATE_LIMITED', 'SERVICE_UNAVAILABLE']);

/** Close codes (and the handshake status) that mean "come back later". @type {Set<number>} */
const RETRY_LATER_CODES = new Set([
  CloseCode.GOING_AWAY, CloseCode.SERVICE_RESTART, CloseCode.TRY_AGAIN_LATER,
]);

/** How often a replay that still leaves a hole is asked for again before giving up. */
const MAX_REPLAY_TRIES = 3;

/** The outbox's first pause after `RATE_LIMITED`; it doubles while they keep coming. */
const RATE_LIMIT_PAUSE_MS = 1_000;

/**
 * The server closes a socket with 4008 after more than 10 `RATE_LIMITED` answers within 10 s
 * (contract section 4). Sends awaiting an answer plus those answers of the last 10 s are kept
 * at 8 or fewer, leaving room for other frames.
 */
const STRIKE_WINDOW_MS = 10_000;
const MAX_STRIKES = 8;

/** How long a closed socket may take to finish the close handshake before it is terminated. */
const CLOSE_TIMEOUT_MS = 1_000;

/** The ping interval when `ready` carries no usable `heartbeat_s`. */
const FALLBACK_PING_INTERVAL_MS = 10_000;

const DEFAULTS = Object.freeze({
  format: 'json',
  backoff: Object.freeze({ baseMs: 500, capMs: 30_000, retryLaterMs: 2_000 }),
  refreshMarginMs: 60_000,
  refreshRetryMs: 5_000,
  maxAuthFailures: 3,
  connectTimeoutMs: 15_000,
  pingIntervalMs: null, // null: half of ready.heartbeat_s; 0: off
  pingTimeoutMs: 10_000,
  typingIntervalMs: 2_000,
  // the server's default message rate (contract section 4), and how many sends may await an answer
  sendRate: Object.freeze({ perSecond: 10, burst: 30, maxInFlight: 5 }),
});

const systemClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
});

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** An error from the server (an `error` frame) or from the SDK itself. */
export class StudyBuddyError extends Error {
  /**
   * @param {string} code e.g. `NOT_FOUND`, `VALIDATION_ERROR`, `DISCONNECTED`, `CLOSED`
   * @param {string} message
   * @param {object} [extra] `frame` (the server's error frame) and/or `cause`
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'StudyBuddyError';
    this.code = code;
    this.frame = extra.frame;
  }
}

// --- policy (pure functions, exported for tests and for apps that want the numbers) ---

/**
 * The window a reconnect delay is drawn from (full jitter: uniform in [0, window]).
 *
 * `retry`: min(cap, base * 2^attempt). `later` (the server asked us to come back later):
 * the same but at least `retryLaterMs`, so a restarting node's clients spread out.
 * `limit` (4009 connection limit, 4008 flooding): the whole cap.
 * @param {'retry'|'later'|'limit'|'reauth'} action
 * @param {number} attempt failed attempts since the last `ready` (0 for the first)
 * @param {{baseMs: number, capMs: number, retryLaterMs: number}} backoff
 * @returns {number} milliseconds
 */
export function reconnectWindow(action, attempt, { baseMs, capMs, retryLaterMs }) {
  if (action === 'limit') return capMs;
  const grown = baseMs * 2 ** attempt;
  if (action === 'later') return Math.min(capMs, Math.max(retryLaterMs, grown));
  return Math.min(capMs, grown);
}

/**
 * Full-jitter exponential backoff: a delay uniform in [0, min(cap, base * 2^attempt)].
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} backoff
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, { baseMs, capMs }, random = Math.random) {
  return random() * reconnectWindow('retry', attempt, { baseMs, capMs, retryLaterMs: 0 });
}

/**
 * What a close means for reconnecting.
 * @param {number} code the close code (1006 when the connection just dropped)
 * @param {number|null} [httpStatus] the HTTP status of a refused handshake, when known
 * @returns {'reauth'|'later'|'limit'|'retry'}
 */
export function closeAction(code, httpStatus = null) {
  if (code === CloseCode.UNAUTHORIZED) return 'reauth';
  if (RETRY_LATER_CODES.has(code) || httpStatus === 503) return 'later';
  if (code === CloseCode.CONNECTION_LIMIT || code === CloseCode.FLOODING) return 'limit';
  return 'retry';
}

/**
 * The claims of a JWT, read without checking the signature (the server checks it).
 * @param {string} token
 * @returns {Record<string, unknown>|null} null when it is not a readable JWT
 */
export function decodeJwt(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(utf8Decoder.decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return claims !== null && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/**
 * When to send `refresh`: `marginMs` before `exp`, or half-way for short-lived tokens.
 * @param {string} token
 * @param {number} marginMs
 * @param {number} nowMs
 * @returns {number|null} milliseconds from now (0: expired), null without an `exp` claim
 */
export function refreshDelay(token, marginMs, nowMs) {
  const exp = decodeJwt(token)?.exp;
  if (typeof exp !== 'number') return null;
  const remaining = exp * 1000 - nowMs;
  return Math.max(0, remaining - marginMs, remaining / 2);
}

// --- MessagePack (the types the protocol needs: nil, bool, int, float, str, bin, array, map) ---

/** A growable byte buffer. */
class Writer {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
  }

  /** Make room for `n` more bytes. */
  reserve(n) {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** Write a number with a DataView setter (`Uint8`, `Int16`, `Float64`, `BigUint64`...). */
  put(kind, value, size) {
    this.reserve(size);
    this.view[`set${kind}`](this.length, value);
    this.length += size;
  }

  byte(value) {
    this.put('Uint8', value, 1);
  }

  append(chunk) {
    this.reserve(chunk.length);
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }
}

/** A type byte and a length: the "fix" form when it fits, else 8, 16 or 32 bits. */
function writeHead(w, length, fix, fixMax, [code8, code16, code32]) {
  if (fix !== null && length <= fixMax) {
    w.byte(fix | length);
  } else if (code8 !== null && length < 0x100) {
    w.byte(code8);
    w.put('Uint8', length, 1);
  } else if (length < 0x10000) {
    w.byte(code16);
    w.put('Uint16', length, 2);
  } else {
    w.byte(code32);
    w.put('Uint32', length, 4);
  }
}

/** Integer encodings, smallest first: [lowest, highest, type byte, DataView kind, size]. */
const INT_FORMATS = [
  [0, 0x7f, null, 'Uint8', 1],
  [-32, -1, null, 'Int8', 1],
  [0, 0xff, 0xcc, 'Uint8', 1],
  [0, 0xffff, 0xcd, 'Uint16', 2],
  [0, 0xffffffff, 0xce, 'Uint32', 4],
  [-0x80, 0x7f, 0xd0, 'Int8', 1],
  [-0x8000, 0x7fff, 0xd1, 'Int16', 2],
  [-0x80000000, 0x7fffffff, 0xd2, 'Int32', 4],
];

function writeInt(w, n) {
  const format = INT_FORMATS.find(([low, high]) => n >= low && n <= high);
  if (format) {
    const [, , code, kind, size] = format;
    if (code !== null) w.byte(code);
    w.put(kind, n, size);
    return;
  }
  writeBigInt(w, BigInt(n));
}

function writeBigInt(w, n) {
  if (n >= 0n && n < 2n ** 64n) {
    w.byte(0xcf);
    w.put('BigUint64', n, 8);
  } else if (n < 0n && n >= -(2n ** 63n)) {
    w.byte(0xd3);
    w.put('BigInt64', n, 8);
  } else {
    throw new RangeError('msgpack: integer does not fit in 64 bits');
  }
}

function writeNumber(w, n) {
  if (Number.isSafeInteger(n)) return writeInt(w, n);
  w.byte(0xcb);
  return w.put('Float64', n, 8);
}

function writeString(w, s) {
  const bytes = utf8Encoder.encode(s);
  writeHead(w, bytes.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
  w.append(bytes);
}

function writeObject(w, value) {
  if (value instanceof ArrayBuffer) value = new Uint8Array(value);
  if (value instanceof Uint8Array) {
    writeHead(w, value.length, null, -1, [0xc4, 0xc5, 0xc6]);
    w.append(value);
  } else if (Array.isArray(value)) {
    writeHead(w, value.length, 0x90, 15, [null, 0xdc, 0xdd]);
    for (const item of value) writeValue(w, item);
  } else {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    writeHead(w, entries.length, 0x80, 15, [null, 0xde, 0xdf]);
    for (const [key, item] of entries) {
      writeString(w, key);
      writeValue(w, item);
    }
  }
}

function writeValue(w, value) {
  if (value === null || value === undefined) return w.byte(0xc0);
  switch (typeof value) {
    case 'boolean': return w.byte(value ? 0xc3 : 0xc2);
    case 'number': return writeNumber(w, value);
    case 'bigint': return writeBigInt(w, value);
    case 'string': return writeString(w, value);
    case 'object': return writeObject(w, value);
    default: throw new TypeError(`msgpack: cannot encode a ${typeof value}`);
  }
}

/** Reads values front to back; throws on truncated input. */
class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** Read a number with a DataView getter; 64-bit integers become Numbers when safe. */
  take(kind, size) {
    if (this.pos + size > this.bytes.length) throw new RangeError('msgpack: truncated data');
    const value = this.view[`get${kind}`](this.pos);
    this.pos += size;
    if (typeof value !== 'bigint') return value;
    return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  }

  slice(n) {
    if (this.pos + n > this.bytes.length) throw new RangeError('msgpack: truncated data');
    this.pos += n;
    return this.bytes.subarray(this.pos - n, this.pos);
  }
}

function readArray(r, n) {
  return Array.from({ length: n }, () => readValue(r));
}

function readMap(r, n) {
  const object = {};
  for (let i = 0; i < n; i += 1) {
    const key = readValue(r);
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new TypeError('msgpack: map keys must be strings or numbers');
    }
    // defineProperty, so that a `__proto__` key is plain data
    Object.defineProperty(object, key, {
      value: readValue(r), enumerable: true, writable: true, configurable: true,
    });
  }
  return object;
}

const readString = (r, n) => utf8Decoder.decode(r.slice(n));

/** Readers for type bytes outside the "fix" ranges. */
const READERS = {
  0xc0: () => null,
  0xc2: () => false,
  0xc3: () => true,
  0xc4: (r) => r.slice(r.take('Uint8', 1)).slice(),
  0xc5: (r) => r.slice(r.take('Uint16', 2)).slice(),
  0xc6: (r) => r.slice(r.take('Uint32', 4)).slice(),
  0xca: (r) => r.take('Float32', 4),
  0xcb: (r) => r.take('Float64', 8),
  0xcc: (r) => r.take('Uint8', 1),
  0xcd: (r) => r.take('Uint16', 2),
  0xce: (r) => r.take('Uint32', 4),
  0xcf: (r) => r.take('BigUint64', 8),
  0xd0: (r) => r.take('Int8', 1),
  0xd1: (r) => r.take('Int16', 2),
  0xd2: (r) => r.take('Int32', 4),
  0xd3: (r) => r.take('BigInt64', 8),
  0xd9: (r) => readString(r, r.take('Uint8', 1)),
  0xda: (r) => readString(r, r.take('Uint16', 2)),
  0xdb: (r) => readString(r, r.take('Uint32', 4)),
  0xdc: (r) => readArray(r, r.take('Uint16', 2)),
  0xdd: (r) => readArray(r, r.take('Uint32', 4)),
  0xde: (r) => readMap(r, r.take('Uint16', 2)),
  0xdf: (r) => readMap(r, r.take('Uint32', 4)),
};

function readValue(r) {
  const byte = r.take('Uint8', 1);
  if (byte < 0x80) return byte;
  if (byte < 0x90) return readMap(r, byte & 0x0f);
  if (byte < 0xa0) return readArray(r, byte & 0x0f);
  if (byte < 0xc0) return readString(r, byte & 0x1f);
  if (byte >= 0xe0) return byte - 0x100;
  const reader = READERS[byte];
  if (!reader) throw new TypeError(`msgpack: unsupported type byte 0x${byte.toString(16)}`);
  return reader(r);
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('msgpack: expected bytes');
}

/** MessagePack encode/decode of plain values (objects become maps, Uint8Array bin). */
export const msgpack = Object.freeze({
  /** @param {unknown} value @returns {Uint8Array} */
  encode(value) {
    const w = new Writer();
    writeValue(w, value);
    return w.bytes.slice(0, w.length);
  },
  /** @param {Uint8Array|ArrayBuffer|ArrayBufferView} data @returns {unknown} */
  decode(data) {
    const r = new Reader(toBytes(data));
    const value = readValue(r);
    if (r.pos !== r.bytes.length) throw new RangeError('msgpack: trailing bytes after the value');
    return value;
  },
});

/** How frames travel for each subprotocol. */
const CODECS = {
  json: {
    subprotocol: JSON_SUBPROTOCOL,
    encode: (frame) => JSON.stringify(frame),
    decode(data) {
      if (typeof data !== 'string') throw new TypeError('binary frame on the JSON subprotocol');
      return JSON.parse(data);
    },
  },
  msgpack: {
    subprotocol: MSGPACK_SUBPROTOCOL,
    encode: (frame) => msgpack.encode(frame),
    decode(data) {
      if (typeof data === 'string') throw new TypeError('text frame on the MessagePack subprotocol');
      return msgpack.decode(data);
    },
  },
};

// --- the client ---

/** Listeners by event name; a throwing listener is reported without breaking the client. */
class Emitter {
  #listeners = new Map();

  on(type, listener) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  emit(type, payload) {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }
}

/** A random id for `client_msg_id` (randomUUID needs a secure context; fall back to hex). */
function randomId() {
  const { crypto } = globalThis;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function withDefaults(options) {
  return {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
    backoff: { ...DEFAULTS.backoff, ...options.backoff },
    pingIntervalMs: options.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
    sendRate: options.sendRate === null ? null : { ...DEFAULTS.sendRate, ...options.sendRate },
    WebSocket: options.WebSocket ?? globalThis.WebSocket,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    newClientMsgId: options.newClientMsgId ?? randomId,
  };
}

/** A problem with a send's fields, found before it goes out; null when fine. */
function sendProblem(groupId, body, clientMsgId) {
  if (typeof groupId !== 'string' || !groupId) return 'group_id must be a non-empty string';
  if (typeof body !== 'string' || !body.trim()) return 'body must be a non-blank string';
  if ([...body].length > MAX_BODY_CHARS) return `body is over ${MAX_BODY_CHARS} characters`;
  const length = typeof clientMsgId === 'string' ? clientMsgId.length : 0;
  if (length < 1 || length > MAX_CLIENT_MSG_ID_CHARS) return 'client_msg_id must be 1..64 characters';
  return null;
}

/** Settle every waiter of a list, emptying it. */
function settleAll(waiters, method, value) {
  for (const waiter of waiters.splice(0)) waiter[method](value);
}

/**
 * A StudyBuddy socket client. Create it, add listeners, `connect()`, `subscribe()`, `send()`.
 */
export class StudyBuddyClient {
  #opts;
  #codec;
  #events = new Emitter();
  #state = 'idle';
  #stopped = true;
  #generation = 0;
  #ws = null;
  #token = null;
  #ready = null;
  #httpStatus = null;
  #attempt = 0;
  #authFailures = 0;
  #forceToken = false;
  #nextRef = 1;
  /** @type {Map<string, object>} timers by name: `reconnect` outlives a connection, others not */
  #timers = new Map();
  /** @type {Map<string|number, {kind: string, key?: string, resolve?: Function, reject?: Function}>} */
  #requests = new Map();
  /** @type {Map<string, {status: string, lastSeq: number|null, sentSince: number|null, waiters: object[], tries: number, replayTries: number, subscribed: object|null}>} */
  #groups = new Map();
  /** @type {Map<string, {frame: object, promise: Promise<object>, resolve: Function, reject: Function, inFlight: boolean, epoch: number}>} */
  #outbox = new Map();
  /** The client's side of the server's message rate: tokens left at time `at` (see `sendRate`). */
  #sendTokens = { tokens: 0, at: 0 };
  /** Sends wait until `until`; `tries` counts pauses since the last ack, `epoch` all pauses. */
  #outboxPause = { until: 0, tries: 0, epoch: 0 };
  /** When this connection got `RATE_LIMITED` answers (the server counts them per socket). */
  #strikes = [];
  #reads = new Map();
  #typingAt = new Map();
  #readyWaiters = [];

  /**
   * @param {import('./studybuddy.js').ClientOptions} options see studybuddy.d.ts
   */
  constructor(options) {
    if (!options || typeof options.getToken !== 'function') {
      throw new TypeError('getToken (an async function returning an access token) is required');
    }
    new URL(options.url); // throws early on a malformed URL
    this.#opts = withDefaults(options);
    this.#codec = CODECS[this.#opts.format];
    if (!this.#codec) throw new TypeError(`unknown format ${this.#opts.format}: use json or msgpack`);
    if (typeof this.#opts.WebSocket !== 'function') {
      throw new TypeError('no WebSocket: pass options.WebSocket (in Node, from the ws package)');
    }
    this.#sendTokens = { tokens: this.#opts.sendRate?.burst ?? 0, at: this.#opts.clock.now() };
  }

  /** `idle`, `connecting`, `authenticating`, `ready`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** The `ready` frame of the current connection (user_id, session_id), or null. */
  get session() {
    return this.#state === 'ready' ? this.#ready : null;
  }

  /** The groups the client keeps subscribed (across reconnects). */
  get groups() {
    return [...this.#groups.keys()];
  }

  /** Sends not yet acknowledged, oldest first. */
  get outbox() {
    return [...this.#outbox.values()].map((entry) => ({ ...entry.frame }));
  }

  /** The highest `seq` delivered for a group (or the server's `last_seq` after a subscribe), or null before any. */
  lastSeq(groupId) {
    return this.#groups.get(groupId)?.lastSeq ?? null;
  }

  /** Listen to an event; returns a function that removes the listener. */
  on(type, listener) {
    return this.#events.on(type, listener);
  }

  off(type, listener) {
    this.#events.off(type, listener);
  }

  /**
   * Start (or resume) the connection. Resolves with the next `ready` frame; rejects when the
   * client stops first (`close()`, or the server refusing the token `maxAuthFailures` times).
   */
  connect() {
    const ready = this.#waitForReady();
    if (this.#stopped) {
      this.#stopped = false;
      this.#attempt = 0;
      this.#authFailures = 0;
      this.#open();
    }
    return ready;
  }

  /**
   * Stop for good: close the socket (terminated if its close handshake takes over 1 s), reject
   * pending sends and subscriptions, forget groups.
   */
  close() {
    const error = new StudyBuddyError('CLOSED', 'the client was closed');
    this.#stop(error);
    for (const entry of this.#outbox.values()) entry.reject(error);
    this.#outbox.clear();
    for (const group of this.#groups.values()) settleAll(group.waiters, 'reject', error);
    this.#groups.clear();
    this.#reads.clear();
  }

  /**
   * Subscribe to a group (kept across reconnects). Resolves with its first `subscribed` frame.
   * @param {string} groupId
   * @param {{sinceSeq?: number}} [options] `sinceSeq`: the last seq you already have (e.g. from
   *   REST history): missed messages are replayed as `message` events first
   */
  subscribe(groupId, { sinceSeq } = {}) {
    let group = this.#groups.get(groupId);
    if (group?.status === 'subscribed') return Promise.resolve(group.subscribed);
    if (!group) {
      group = newGroup(sinceSeq);
      this.#groups.set(groupId, group);
    }
    const subscribed = quiet(new Promise((resolve, reject) => group.waiters.push({ resolve, reject })));
    if (this.#state === 'ready' && group.status === 'pending') this.#sendSubscribe(groupId, group);
    return subscribed;
  }

  /** Stop following a group. Resolves with `unsubscribed` (null when not connected). */
  unsubscribe(groupId) {
    const group = this.#groups.get(groupId);
    this.#groups.delete(groupId);
    this.#clearTimer(`subscribe:${groupId}`);
    if (group) settleAll(group.waiters, 'reject', new StudyBuddyError('UNSUBSCRIBED', 'unsubscribed'));
    if (this.#state !== 'ready') return Promise.resolve(null);
    return this.#request({ type: 'unsubscribe', group_id: groupId }, 'unsubscribe', groupId);
  }

  /**
   * Send a message. It waits in the outbox until acked, across reconnects; resolves with the
   * `ack`. The outbox goes out in order, paced by `sendRate`, and holds back after
   * `RATE_LIMITED`. The same `clientMsgId` again returns the same promise (and the server dedupes).
   * @param {string} groupId
   * @param {string} body 1..4000 characters
   * @param {{clientMsgId?: string}} [options]
   */
  send(groupId, body, { clientMsgId = this.#opts.newClientMsgId() } = {}) {
    const problem = sendProblem(groupId, body, clientMsgId);
    if (problem) return Promise.reject(new StudyBuddyError('VALIDATION_ERROR', problem));
    const existing = this.#outbox.get(clientMsgId);
    if (existing) return existing.promise;
    const frame = { type: 'send', group_id: groupId, body, client_msg_id: clientMsgId };
    const entry = /** @type {any} */ ({ frame, inFlight: false, epoch: 0 });
    entry.promise = quiet(new Promise((resolve, reject) => Object.assign(entry, { resolve, reject })));
    this.#outbox.set(clientMsgId, entry);
    this.#pumpOutbox();
    return entry.promise;
  }

  /** Say the user is typing (at most once per `typingIntervalMs` per group); true if sent. */
  typing(groupId) {
    const now = this.#opts.clock.now();
    if (this.#state !== 'ready' || now - (this.#typingAt.get(groupId) ?? -Infinity) < this.#opts.typingIntervalMs) {
      return false;
    }
    this.#typingAt.set(groupId, now);
    return this.#transmit({ type: 'typing', group_id: groupId });
  }

  /** Move the read marker (sent now, or on the next connection). */
  markRead(groupId, seq) {
    this.#reads.set(groupId, Math.max(seq, this.#reads.get(groupId) ?? 0));
    if (this.#state === 'ready') this.#flushReads();
  }

  /** An application-level ping; resolves with `pong`. */
  ping() {
    if (this.#state !== 'ready') return Promise.reject(notConnected());
    return this.#request({ type: 'ping' }, 'ping');
  }

  /**
   * Skip the wait before the next reconnect attempt, e.g. when the browser says it is online
   * again or the page becomes visible. The backoff count is kept: a failure waits as before.
   * @returns {boolean} true when an attempt started now
   */
  reconnectNow() {
    if (this.#stopped || this.#state !== 'reconnecting' || !this.#timers.has('reconnect')) return false;
    this.#clearTimer('reconnect');
    this.#open();
    return true;
  }

  /** Get a new token now (`getToken({force: true})`) and send `refresh`; resolves with `ready`. */
  async refreshToken() {
    const ws = this.#ws;
    if (this.#state !== 'ready') throw notConnected();
    const token = await this.#opts.getToken({ force: true });
    if (this.#ws !== ws || this.#state !== 'ready') throw notConnected();
    const ready = await this.#request({ type: 'refresh', token }, 'refresh');
    this.#token = token;
    this.#scheduleRefresh();
    return ready;
  }

  // --- connection life ---

  async #open() {
    const generation = ++this.#generation;
    this.#setState('connecting');
    const { connectTimeoutMs } = this.#opts;
    if (connectTimeoutMs > 0) this.#setTimer('connect', connectTimeoutMs, () => this.#connectTimedOut());
    let token;
    try {
      token = await this.#freshToken(generation);
    } catch (cause) {
      if (generation === this.#generation) this.#retryAfter('TOKEN_ERROR', 'getToken failed', cause);
      return;
    }
    if (generation !== this.#generation) return;
    try {
      this.#dial(token);
    } catch (cause) {
      this.#retryAfter('CONNECT_FAILED', 'could not open a WebSocket', cause);
    }
  }

  /** Report a failure before any socket event, and try again with backoff. */
  #retryAfter(code, message, cause) {
    this.#emitError(new StudyBuddyError(code, message, { cause }));
    this.#scheduleReconnect(this.#nextDelay('retry'));
  }

  /**
   * No `ready` within `connectTimeoutMs` of the attempt's start (a node that accepts but never
   * answers, or a token getter that hangs): give the attempt up and retry with backoff.
   */
  #connectTimedOut() {
    const limit = `within ${this.#opts.connectTimeoutMs} ms`;
    if (this.#ws) return this.#drop(`no ready ${limit}`);
    this.#generation += 1; // the getter's late answer is ignored
    return this.#retryAfter('TOKEN_ERROR', `getToken did not answer ${limit}`);
  }

  /** The getter's token; forced when the last one was refused or has already expired. */
  async #freshToken(generation) {
    const force = this.#forceToken;
    let token = await this.#opts.getToken({ force });
    if (!force && refreshDelay(token, 0, this.#opts.clock.now()) === 0) {
      token = await this.#opts.getToken({ force: true });
    }
    if (typeof token !== 'string' || !token) throw new TypeError('getToken returned no token');
    if (generation === this.#generation) this.#forceToken = false;
    return token;
  }

  #dial(token) {
    this.#token = token;
    this.#httpStatus = null;
    const ws = new this.#opts.WebSocket(this.#opts.url, [this.#codec.subprotocol]);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => this.#ws === ws && this.#onOpen();
    ws.onmessage = (event) => this.#ws === ws && this.#onData(event.data);
    ws.onerror = (event) => this.#ws === ws && this.#onSocketError(event);
    ws.onclose = (event) => this.#ws === ws && this.#onClose(event.code, event.reason ?? '');
  }

  #onOpen() {
    this.#setState('authenticating');
    this.#transmit({ type: 'auth', token: this.#token });
  }

  /** A refused handshake: Node's `ws` says "Unexpected server response: 503"; browsers say nothing. */
  #onSocketError(event) {
    const text = String(event?.message ?? event?.error?.message ?? '');
    const match = /server response: (\d{3})/.exec(text);
    if (match) this.#httpStatus = Number(match[1]);
  }

  #onClose(code, reason) {
    const wasReady = this.#state === 'ready';
    this.#detach();
    if (this.#stopped) return;
    const action = closeAction(code, this.#httpStatus);
    const delayMs = this.#delayAfterClose(action, wasReady);
    this.#events.emit('disconnected', { code, reason, httpStatus: this.#httpStatus, action, delayMs });
    if (delayMs === null) {
      this.#stop(new StudyBuddyError('UNAUTHORIZED', `the server refused the token ${this.#authFailures} times`));
    } else {
      this.#scheduleReconnect(delayMs);
    }
  }

  /** 4001: ask for a new token; refusals before any `ready` count, and stop the client at the limit. */
  #delayAfterClose(action, wasReady) {
    if (action !== 'reauth') return this.#nextDelay(action);
    this.#forceToken = true;
    if (wasReady) return this.#nextDelay('retry'); // an expired token: never counted
    this.#authFailures += 1;
    if (this.#authFailures >= this.#opts.maxAuthFailures) return null;
    return this.#nextDelay('retry');
  }

  #nextDelay(action) {
    const window = reconnectWindow(action, this.#attempt, this.#opts.backoff);
    this.#attempt += 1;
    return this.#opts.random() * window;
  }

  #scheduleReconnect(delayMs) {
    this.#clearTimer('connect');
    this.#setState('reconnecting');
    this.#setTimer('reconnect', delayMs, () => this.#open());
  }

  /** Forget the socket and everything tied to it; groups, the outbox and its pacing stay. */
  #detach() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = ignore; // Node's ws throws an 'error' nobody listens to (e.g. closed while connecting)
    }
    for (const name of [...this.#timers.keys()]) if (name !== 'reconnect') this.#clearTimer(name);
    const requests = [...this.#requests.values()];
    this.#requests.clear();
    for (const request of requests) {
      if (request.kind === 'unsubscribe') request.resolve(null);
      else request.reject?.(new StudyBuddyError('DISCONNECTED', 'the connection closed'));
    }
    for (const group of this.#groups.values()) group.status = 'pending';
    for (const entry of this.#outbox.values()) entry.inFlight = false;
    this.#strikes = [];
    return ws;
  }

  /** Give a connection up without waiting for the close handshake (no pong, no ready). */
  #drop(reason) {
    const ws = this.#ws;
    this.#onClose(CloseCode.ABNORMAL, reason);
    this.#closeSocket(ws, reason);
  }

  /**
   * Close a detached socket with 1000. Node's `ws` waits 30 s for the peer's close frame,
   * keeping the process alive when the peer is frozen: terminate it if the handshake is not
   * over within CLOSE_TIMEOUT_MS. (A browser's WebSocket has no terminate() and needs none.)
   */
  #closeSocket(ws, reason) {
    if (!ws) return;
    try {
      ws.close(CloseCode.NORMAL, reason);
    } catch {
      // already closing
    }
    if (typeof ws.terminate !== 'function' || ws.readyState === 3) return;
    const { clock } = this.#opts;
    const timer = clock.setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS);
    ws.onclose = () => clock.clearTimeout(timer);
  }

  #stop(error) {
    this.#stopped = true;
    this.#generation += 1;
    const ws = this.#detach();
    this.#clearTimer('reconnect');
    this.#closeSocket(ws, 'client closed');
    settleAll(this.#readyWaiters, 'reject', error);
    this.#setState('closed');
  }

  #waitForReady() {
    if (this.#state === 'ready') return Promise.resolve(this.#ready);
    return quiet(new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject })));
  }

  // --- frames in ---

  #onData(data) {
    let frame;
    try {
      frame = this.#codec.decode(data);
    } catch (cause) {
      this.#emitError(new StudyBuddyError('DECODE_ERROR', 'an unreadable frame', { cause }));
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') {
      this.#emitError(new StudyBuddyError('DECODE_ERROR', 'a frame without a type'));
      return;
    }
    this.#events.emit('frame', frame);
    this.#onFrame(frame);
  }

  #onFrame(frame) {
    switch (frame.type) {
      case 'ready': return this.#onReady(frame);
      case 'subscribed': return this.#onSubscribed(frame);
      case 'unsubscribed': return this.#onUnsubscribed(frame);
      case 'message': return this.#onMessage(frame);
      case 'ack': return this.#onAck(frame);
      case 'pong': return this.#takeRequest(frame.ref)?.resolve?.(frame);
      case 'error': return this.#onErrorFrame(frame);
      case 'presence_diff': return this.#onPresenceDiff(frame);
      default: return PASS_THROUGH.has(frame.type) && this.#events.emit(frame.type, frame);
    }
  }

  /**
   * The server's batched presence (asked for at subscribe, so presence works in groups of any
   * size): a `presence_diff` event, and a `presence` event per change for simpler listeners.
   */
  #onPresenceDiff(frame) {
    this.#events.emit('presence_diff', frame);
    for (const [status, users] of [['online', frame.online], ['offline', frame.offline]]) {
      for (const userId of users) {
        this.#events.emit('presence', {
          type: 'presence', group_id: frame.group_id, user_id: userId, status,
        });
      }
    }
  }

  #onReady(frame) {
    const request = this.#takeRequest(frame.ref);
    if (request) return request.resolve(frame); // the answer to `refresh`
    if (this.#state !== 'authenticating') return undefined;
    this.#ready = frame;
    this.#attempt = 0;
    this.#authFailures = 0;
    this.#clearTimer('connect');
    this.#setState('ready');
    this.#scheduleRefresh();
    this.#schedulePing();
    for (const [groupId, group] of this.#groups) this.#sendSubscribe(groupId, group);
    this.#pumpOutbox();
    this.#flushReads();
    settleAll(this.#readyWaiters, 'resolve', frame);
    return this.#events.emit('ready', frame);
  }

  #onSubscribed(frame) {
    this.#takeRequest(frame.ref);
    const group = this.#groups.get(frame.group_id);
    if (group?.status !== 'subscribing') return;
    if (group.sentSince !== null && !this.#checkRecovery(frame, group)) return;
    // The server's cursor starts at last_seq: messages up to it were replayed (or are to be
    // reloaded: `recovery` said so), and live ones follow it. Also when last_seq is below what
    // the client saw (a sinceSeq past the end, a log restored from backup): else every live
    // message up to the old lastSeq would be dropped as a duplicate.
    group.lastSeq = frame.last_seq;
    group.status = 'subscribed';
    group.tries = 0;
    group.replayTries = 0;
    group.subscribed = frame;
    settleAll(group.waiters, 'resolve', frame);
    this.#events.emit('subscribed', frame);
  }

  /** After a `since_seq` subscribe: ask again if the replay left a hole, else report `recovery`. */
  #checkRecovery(frame, group) {
    let recovered = frame.recovered === true;
    if (recovered && (group.lastSeq ?? 0) < frame.last_seq) {
      if (group.replayTries < MAX_REPLAY_TRIES) {
        group.replayTries += 1;
        this.#sendSubscribe(frame.group_id, group);
        return false;
      }
      recovered = false;
    }
    this.#events.emit('recovery', {
      group_id: frame.group_id, recovered, since_seq: group.sentSince, last_seq: frame.last_seq,
    });
    return true;
  }

  #onUnsubscribed(frame) {
    const request = this.#takeRequest(frame.ref);
    if (request) return request.resolve(frame);
    const group = this.#groups.get(frame.group_id); // the server ended it: kicked, group deleted
    if (!group) return undefined;
    this.#groups.delete(frame.group_id);
    settleAll(group.waiters, 'reject', new StudyBuddyError('UNSUBSCRIBED', 'the server ended the subscription'));
    return this.#events.emit('unsubscribed', { group_id: frame.group_id });
  }

  /** Deliver each seq once and in order; a jump past `lastSeq + 1` re-subscribes to fill it. */
  #onMessage(frame) {
    const group = this.#groups.get(frame.group_id);
    if (!group) return;
    const last = group.lastSeq;
    if (last !== null && frame.seq <= last) return;
    if (last !== null && frame.seq > last + 1) {
      if (group.status === 'subscribed') {
        this.#events.emit('gap', { group_id: frame.group_id, expected_seq: last + 1, seq: frame.seq });
        this.#sendSubscribe(frame.group_id, group);
      }
      return;
    }
    group.lastSeq = frame.seq;
    this.#events.emit('message', frame);
  }

  #onAck(frame) {
    this.#takeRequest(frame.ref);
    const entry = this.#outbox.get(frame.client_msg_id);
    if (!entry) return;
    this.#outbox.delete(frame.client_msg_id);
    this.#outboxPause.tries = 0;
    entry.resolve(frame);
    this.#events.emit('ack', frame);
    this.#pumpOutbox();
  }

  #onErrorFrame(frame) {
    if (frame.code === 'RATE_LIMITED') this.#strikes.push(this.#opts.clock.now());
    const error = new StudyBuddyError(frame.code, frame.message, { frame });
    const request = this.#takeRequest(frame.ref);
    if (!request) return this.#emitError(error);
    if (request.kind === 'send') return this.#sendFailed(request.key, error);
    if (request.kind === 'subscribe') return this.#subscribeFailed(request.key, error);
    return request.reject(error);
  }

  #sendFailed(clientMsgId, error) {
    const entry = this.#outbox.get(clientMsgId);
    if (!entry) return;
    if (TRANSIENT_ERRORS.has(error.code)) {
      entry.inFlight = false; // back in its place in the outbox
      if (entry.epoch === this.#outboxPause.epoch) this.#pauseOutbox(error.code);
      this.#pumpOutbox();
      return;
    }
    this.#outbox.delete(clientMsgId);
    entry.reject(error);
    this.#pumpOutbox();
  }

  /**
   * Hold the whole outbox back after `RATE_LIMITED` or `SERVICE_UNAVAILABLE` to a send made
   * since the last pause (the answers to sends already in flight do not pause it again).
   * `RATE_LIMITED`: 1 s, doubling up to `backoff.capMs` until an ack, and no send tokens left
   * (the server's bucket is empty too). `SERVICE_UNAVAILABLE`: a jittered backoff window.
   */
  #pauseOutbox(code) {
    const pause = this.#outboxPause;
    const now = this.#opts.clock.now();
    pause.tries += 1;
    pause.epoch += 1;
    if (code === 'RATE_LIMITED') {
      pause.until = now + Math.min(this.#opts.backoff.capMs, RATE_LIMIT_PAUSE_MS * 2 ** (pause.tries - 1));
      this.#sendTokens = { tokens: 0, at: now };
    } else {
      pause.until = now + this.#retryDelay(pause.tries);
    }
  }

  #subscribeFailed(groupId, error) {
    const group = this.#groups.get(groupId);
    if (!group) return;
    if (TRANSIENT_ERRORS.has(error.code)) {
      group.tries += 1;
      this.#setTimer(`subscribe:${groupId}`, this.#retryDelay(group.tries), () => {
        if (this.#groups.get(groupId) === group) this.#sendSubscribe(groupId, group);
      });
      return;
    }
    this.#groups.delete(groupId);
    if (group.waiters.length) settleAll(group.waiters, 'reject', error);
    else this.#events.emit('unsubscribed', { group_id: groupId, error });
  }

  #retryDelay(tries) {
    return this.#opts.random() * reconnectWindow('retry', tries, this.#opts.backoff);
  }

  // --- frames out ---

  #transmit(frame) {
    try {
      this.#ws.send(this.#codec.encode(frame));
      return true;
    } catch (cause) {
      this.#emitError(new StudyBuddyError('SEND_FAILED', `could not send ${frame.type}`, { cause }));
      return false;
    }
  }

  #track(kind, key, resolve, reject) {
    const ref = this.#nextRef++;
    this.#requests.set(ref, { kind, key, resolve, reject });
    return ref;
  }

  #takeRequest(ref) {
    if (ref === undefined || ref === null) return undefined;
    const request = this.#requests.get(ref);
    this.#requests.delete(ref);
    return request;
  }

  #request(frame, kind, key) {
    return new Promise((resolve, reject) => {
      const ref = this.#track(kind, key, resolve, reject);
      if (!this.#transmit({ ...frame, ref })) {
        this.#requests.delete(ref);
        reject(notConnected());
      }
    });
  }

  #sendSubscribe(groupId, group) {
    group.status = 'subscribing';
    group.sentSince = group.lastSeq;
    const frame = {
      type: 'subscribe', group_id: groupId, since_seq: group.lastSeq ?? undefined, presence: 'diff',
    };
    this.#transmit({ ...frame, ref: this.#track('subscribe', groupId) });
  }

  /**
   * Send what the outbox may now, oldest first: not while paused, at most
   * `sendRate.maxInFlight` awaiting an answer (one after a pause, until an ack), never so many
   * that their refusals could get the socket closed for flooding, and as `sendRate` tokens
   * allow. A timer comes back for the rest; an answer frees a place.
   */
  #pumpOutbox() {
    if (this.#state !== 'ready') return;
    const now = this.#opts.clock.now();
    const pause = this.#outboxPause;
    if (pause.until > now) {
      this.#setTimer('outbox', pause.until - now, () => this.#pumpOutbox());
      return;
    }
    this.#strikes = this.#strikes.filter((at) => now - at < STRIKE_WINDOW_MS);
    const room = MAX_STRIKES - this.#strikes.length;
    const maxInFlight = Math.min(room, pause.tries > 0 ? 1 : (this.#opts.sendRate?.maxInFlight ?? Infinity));
    let inFlight = 0;
    for (const entry of this.#outbox.values()) if (entry.inFlight) inFlight += 1;
    for (const entry of this.#outbox.values()) {
      if (entry.inFlight) continue;
      if (inFlight >= maxInFlight) {
        // held back by recent refusals: come back when the oldest no longer counts
        if (inFlight >= room && this.#strikes.length) {
          this.#setTimer('outbox', this.#strikes[0] + STRIKE_WINDOW_MS - now, () => this.#pumpOutbox());
        }
        return;
      }
      const tokenMs = this.#takeSendToken(now);
      if (tokenMs > 0) {
        this.#setTimer('outbox', tokenMs, () => this.#pumpOutbox());
        return;
      }
      this.#transmitSend(entry);
      inFlight += 1;
    }
  }

  /** Take a send token (a bucket of `sendRate.burst`, refilled at `perSecond`): 0, or the ms until one. */
  #takeSendToken(now) {
    const rate = this.#opts.sendRate;
    if (!rate) return 0;
    const bucket = this.#sendTokens;
    bucket.tokens = Math.min(rate.burst, bucket.tokens + ((now - bucket.at) * rate.perSecond) / 1000);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / rate.perSecond));
  }

  #transmitSend(entry) {
    entry.inFlight = true;
    entry.epoch = this.#outboxPause.epoch;
    const ref = this.#track('send', entry.frame.client_msg_id);
    if (!this.#transmit({ ...entry.frame, ref })) {
      this.#requests.delete(ref);
      entry.inFlight = false; // the socket is going: the next ready sends it
    }
  }

  #flushReads() {
    for (const [groupId, seq] of this.#reads) this.#transmit({ type: 'read', group_id: groupId, seq });
    this.#reads.clear();
  }

  // --- timers ---

  #scheduleRefresh() {
    const delay = refreshDelay(this.#token, this.#opts.refreshMarginMs, this.#opts.clock.now());
    if (delay === null) return;
    this.#setTimer('refresh', delay, () => this.#refreshInBackground());
  }

  #refreshInBackground() {
    const ws = this.#ws;
    this.refreshToken().catch((cause) => {
      if (this.#ws !== ws) return; // the connection ended; the next one gets a new token
      this.#emitError(new StudyBuddyError('REFRESH_FAILED', 'could not refresh the token', { cause }));
      this.#setTimer('refresh', this.#opts.refreshRetryMs, () => this.#refreshInBackground());
    });
  }

  /**
   * `ping` frames every `pingIntervalMs` (by default half of `ready.heartbeat_s`): no `pong`
   * within `pingTimeoutMs` drops the connection, so a frozen node or a silent network is noticed.
   */
  #schedulePing() {
    const { pingTimeoutMs } = this.#opts;
    const pingIntervalMs = this.#pingInterval();
    if (!(pingIntervalMs > 0)) return;
    this.#setTimer('ping', pingIntervalMs, () => {
      const ws = this.#ws;
      this.#setTimer('pingDeadline', pingTimeoutMs, () => this.#drop('no pong'));
      const next = () => {
        if (this.#ws !== ws) return;
        this.#clearTimer('pingDeadline');
        this.#schedulePing();
      };
      this.ping().then(next, next);
    });
  }

  #pingInterval() {
    const { pingIntervalMs } = this.#opts;
    if (pingIntervalMs !== null) return pingIntervalMs;
    const heartbeatS = this.#ready?.heartbeat_s;
    return typeof heartbeatS === 'number' && heartbeatS > 0 ? heartbeatS * 500 : FALLBACK_PING_INTERVAL_MS;
  }

  #setTimer(name, ms, fn) {
    this.#clearTimer(name);
    const id = this.#opts.clock.setTimeout(() => {
      this.#timers.delete(name);
      fn();
    }, ms);
    this.#timers.set(name, id);
  }

  #clearTimer(name) {
    if (!this.#timers.has(name)) return;
    this.#opts.clock.clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
  }

  // --- events ---

  #setState(state) {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    this.#events.emit('state', { state, previous });
  }

  #emitError(error) {
    this.#events.emit('error', error);
  }
}

function newGroup(sinceSeq) {
  return {
    status: 'pending',
    lastSeq: Number.isInteger(sinceSeq) ? sinceSeq : null,
    sentSince: null,
    waiters: [],
    tries: 0,
    replayTries: 0,
    subscribed: null,
  };
}

/**
 * Mark a promise as handled, so that one the app never awaits (a fire-and-forget `send`
 * rejected by `close()`) is not an unhandled rejection; awaiting it still throws.
 */
function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

function ignore() {}

function notConnected() {
  return new StudyBuddyError('NOT_CONNECTED', 'not connected');
}
