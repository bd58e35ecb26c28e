/**
 * Test doubles: a fake WebSocket (the test plays the server), a fake clock, fake JWTs.
 * @module
 */
import { msgpack } from '../studybuddy.js';

/** Let pending promise callbacks and I/O callbacks run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A network of fake sockets: every socket the client opens is kept in `sockets`.
 * @param {{format?: 'json'|'msgpack', answerPings?: boolean}} [options] how the fake server
 *   encodes frames; whether it answers `ping` with `pong` (on a microtask, as a live node
 *   would; `net.answerPings = false` plays a frozen one). `net.serve = (frame, socket) => ...`
 *   sees every other client frame, on a microtask, to answer it.
 */
export function fakeNetwork({ format = 'json', answerPings = true } = {}) {
  const sockets = [];
  let pongs = answerPings;
  let serve = null;
  const decode = (data) => (typeof data === 'string' ? JSON.parse(data) : msgpack.decode(data));

  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.protocol = '';
      this.readyState = 0;
      this.binaryType = 'blob';
      this.sent = [];
      this.closedWith = null;
      this.frozen = false;
      this.terminated = false;
      sockets.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: the socket is not open');
      this.sent.push(data);
      if (this.frozen) return;
      const frame = decode(data);
      if (frame.type === 'ping' && pongs) {
        queueMicrotask(() => this.readyState === 1 && this.deliver({ type: 'pong', ref: frame.ref }));
      } else if (serve) {
        queueMicrotask(() => this.readyState === 1 && serve(frame, this));
      }
    }

    /**
     * Like Node's ws: closing while connecting emits an 'error', which throws without a listener.
     * A frozen peer never answers the close frame: the socket stays closing.
     */
    close(code = 1000, reason = '') {
      if (this.readyState >= 2) return;
      const connecting = this.readyState === 0;
      this.closedWith = { code, reason };
      if (this.frozen && !connecting) {
        this.readyState = 2;
        return;
      }
      this.readyState = 3;
      if (!connecting) {
        this.onclose?.({ code, reason, wasClean: true });
        return;
      }
      process.nextTick(() => {
        const error = new Error('WebSocket was closed before the connection was established');
        if (!this.onerror) throw error; // an EventEmitter 'error' without a listener
        this.onerror({ error, message: error.message });
        this.onclose?.({ code: 1006, reason: '', wasClean: false });
      });
    }

    /** Like Node's ws: destroy the connection without a close handshake. */
    terminate() {
      if (this.readyState === 3) return;
      this.terminated = true;
      this.readyState = 3;
      this.onclose?.({ code: 1006, reason: '', wasClean: false });
    }

    // --- the server's side ---

    /** The node freezes (SIGSTOP, a silent partition): nothing the client sends is answered. */
    freeze() {
      this.frozen = true;
    }

    /** Complete the handshake. */
    accept() {
      this.readyState = 1;
      this.protocol = this.protocols[0];
      this.onopen?.({});
    }

    /** Send a frame to the client. */
    deliver(frame) {
      const data = format === 'msgpack' ? msgpack.encode(frame).buffer : JSON.stringify(frame);
      this.onmessage?.({ data });
    }

    /** The server closes (or the network drops: 1006). */
    serverClose(code, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** Refuse the handshake with an HTTP status, as Node's `ws` reports it. */
    refuse(status) {
      this.readyState = 3;
      this.onerror?.({ message: `Unexpected server response: ${status}` });
      this.onclose?.({ code: 1006, reason: '' });
    }

    /** Every frame the client sent, decoded. */
    frames(type) {
      const all = this.sent.map(decode);
      return type ? all.filter((frame) => frame.type === type) : all;
    }

    /** The last frame of `type` the client sent. */
    last(type) {
      return this.frames(type).at(-1);
    }
  }

  return {
    WebSocket: FakeWebSocket,
    sockets,
    get last() {
      return sockets.at(-1);
    },
    get answerPings() {
      return pongs;
    },
    set answerPings(value) {
      pongs = value;
    },
    get serve() {
      return serve;
    },
    set serve(handler) {
      serve = handler;
    },
  };
}

/** A clock whose time moves only when the test says so. */
export class FakeClock {
  constructor(now = 1_700_000_000_000) {
    this.time = now;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.time;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  pending() {
    return [...this.timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Move time forward by `ms`, firing due timers in order (and flushing after each). */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.timers.delete(id);
      this.time = timer.at;
      timer.fn();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

const base64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsigned JWT with the given claims (the SDK never checks signatures). */
export function fakeJwt(claims) {
  return `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(claims)}.c2lnbmF0dXJl`;
}
