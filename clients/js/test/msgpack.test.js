import { test } from 'node:test';
import assert from 'node:assert/strict';

import { msgpack } from '../studybuddy.js';
import { CLIENT_FRAMES, SERVER_FRAMES } from './frames.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const fromHex = (text) => new Uint8Array(Buffer.from(text, 'hex'));

test('every client and server frame shape survives a MessagePack round trip', () => {
  for (const frame of [...CLIENT_FRAMES, ...SERVER_FRAMES]) {
    assert.deepEqual(msgpack.decode(msgpack.encode(frame)), frame, frame.type);
  }
});

test('decodes what the server (msgspec) encodes: a ready and a message frame', () => {
  const ready = fromHex(
    '85a474797065a57265616479a7757365725f6964d92437613635303030302d303030302d343030302d383030302d'
    + '303030303030303030303031aa73657373696f6e5f6964a432623163ab6865617274626561745f73cb40340000'
    + '00000000a372656601',
  );
  assert.deepEqual(msgpack.decode(ready), {
    type: 'ready', user_id: '7a650000-0000-4000-8000-000000000001', session_id: '2b1c', heartbeat_s: 20, ref: 1,
  });
  const message = fromHex(
    '88a474797065a76d657373616765a867726f75705f6964d92434626563303030302d303030302d343030302d3830'
    + '30302d303030303030303030303032a3736571cd012caa6d6573736167655f6964d92430666131303030302d3030'
    + '30302d343030302d383030302d303030303030303030303033a9617574686f725f6964c0a4626f6479b764696420'
    + '616e796f6e6520736f6c76652034623f20c3a9aa637265617465645f6174bb323032362d31312d32365430353a34'
    + '303a30302e3639333030305aad636c69656e745f6d73675f6964a46b2d3137',
  );
  const decoded = msgpack.decode(message);
  assert.equal(decoded.seq, 300);
  assert.equal(decoded.author_id, null);
  assert.equal(decoded.body, 'did anyone solve 4b? é');
  assert.equal(decoded.created_at, '2026-11-26T05:40:00.693000Z');
});

test('encodes a send frame byte for byte as msgspec does', () => {
  const frame = { type: 'send', group_id: 'g', body: 'x', client_msg_id: 'c', ref: 70000 };
  assert.equal(
    hex(msgpack.encode(frame)),
    '85a474797065a473656e64a867726f75705f6964a167a4626f6479a178ad636c69656e745f6d73675f6964a163a3726566ce00011170',
  );
});

test('integers use the smallest encoding and round-trip at every boundary', () => {
  const cases = [
    [0, '00'], [127, '7f'], [128, 'cc80'], [255, 'ccff'], [256, 'cd0100'], [65535, 'cdffff'],
    [65536, 'ce00010000'], [4294967295, 'ceffffffff'], [4294967296, 'cf0000000100000000'],
    [-1, 'ff'], [-32, 'e0'], [-33, 'd0df'], [-128, 'd080'], [-129, 'd1ff7f'], [-32768, 'd18000'],
    [-32769, 'd2ffff7fff'], [-2147483648, 'd280000000'], [-2147483649, 'd3ffffffff7fffffff'],
    [Number.MAX_SAFE_INTEGER, 'cf001fffffffffffff'], [Number.MIN_SAFE_INTEGER, 'd3ffe0000000000001'],
  ];
  for (const [value, encoded] of cases) {
    assert.equal(hex(msgpack.encode(value)), encoded, String(value));
    assert.equal(msgpack.decode(fromHex(encoded)), value);
  }
});

test('64-bit integers beyond the safe range come back as BigInt', () => {
  assert.equal(msgpack.decode(msgpack.encode(2n ** 64n - 1n)), 2n ** 64n - 1n);
  assert.equal(msgpack.decode(msgpack.encode(-(2n ** 63n))), -(2n ** 63n));
  assert.throws(() => msgpack.encode(2n ** 64n), RangeError);
});

test('nil, booleans, floats', () => {
  assert.equal(hex(msgpack.encode(null)), 'c0');
  assert.equal(msgpack.decode(msgpack.encode(undefined)), null);
  assert.equal(msgpack.decode(msgpack.encode(true)), true);
  assert.equal(msgpack.decode(msgpack.encode(false)), false);
  assert.equal(hex(msgpack.encode(1.5)), 'cb3ff8000000000000');
  assert.equal(msgpack.decode(fromHex('ca3fc00000')), 1.5); // float32
  assert.ok(Number.isNaN(msgpack.decode(msgpack.encode(NaN))));
  assert.equal(msgpack.decode(msgpack.encode(-Infinity)), -Infinity);
});

test('strings of every length class, with multi-byte UTF-8', () => {
  for (const length of [0, 31, 32, 255, 256, 65535, 65536]) {
    const text = 'é'.repeat(Math.floor(length / 2)) + 'a'.repeat(length % 2);
    assert.equal(msgpack.decode(msgpack.encode(text)), text, `length ${length}`);
  }
  assert.equal(hex(msgpack.encode('a'.repeat(31))).slice(0, 2), 'bf');
  assert.equal(hex(msgpack.encode('a'.repeat(32))).slice(0, 4), 'd920');
  assert.equal(hex(msgpack.encode('a'.repeat(256))).slice(0, 6), 'da0100');
  assert.equal(hex(msgpack.encode('a'.repeat(65536))).slice(0, 10), 'db00010000');
});

test('binary values of every length class', () => {
  for (const length of [0, 255, 256, 65536]) {
    const bytes = new Uint8Array(length).map((_, i) => i % 251);
    assert.deepEqual(msgpack.decode(msgpack.encode(bytes)), bytes);
  }
  assert.deepEqual(msgpack.decode(msgpack.encode(new Uint8Array([1, 2]).buffer)), new Uint8Array([1, 2]));
});

test('arrays and maps of every length class, nested', () => {
  for (const length of [0, 15, 16, 65535, 65536]) {
    const list = Array.from({ length }, (_, i) => i);
    assert.deepEqual(msgpack.decode(msgpack.encode(list)), list);
  }
  for (const length of [0, 15, 16, 65536]) {
    const map = Object.fromEntries(Array.from({ length }, (_, i) => [`k${i}`, [i, { i }]]));
    assert.deepEqual(msgpack.decode(msgpack.encode(map)), map);
  }
  assert.equal(hex(msgpack.encode(Array(16).fill(0))).slice(0, 6), 'dc0010');
  assert.equal(hex(msgpack.encode(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [i, 0])))).slice(0, 6), 'de0010');
  assert.equal(hex(msgpack.encode({ a: undefined, b: 1 })), '81a16201');
});

test('decoding accepts ArrayBuffer and typed-array views', () => {
  const bytes = msgpack.encode({ type: 'pong' });
  assert.deepEqual(msgpack.decode(bytes.buffer), { type: 'pong' });
  const padded = new Uint8Array(bytes.length + 4);
  padded.set(bytes, 2);
  assert.deepEqual(msgpack.decode(new DataView(padded.buffer, 2, bytes.length)), { type: 'pong' });
  assert.deepEqual(msgpack.decode(Buffer.from(bytes)), { type: 'pong' });
});

test('a __proto__ key is plain data, not a prototype', () => {
  const decoded = msgpack.decode(fromHex('81a95f5f70726f746f5f5f81a178c3'));
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.deepEqual(Object.keys(decoded), ['__proto__']);
  assert.equal(decoded.x, undefined);
});

test('bad input is refused, not misread', () => {
  assert.throws(() => msgpack.decode(fromHex('cd01')), RangeError); // truncated
  assert.throws(() => msgpack.decode(fromHex('0000')), RangeError); // trailing bytes
  assert.throws(() => msgpack.decode(fromHex('d40100')), TypeError); // ext: unsupported
  assert.throws(() => msgpack.decode(fromHex('a2c328')), TypeError); // invalid UTF-8
  assert.throws(() => msgpack.decode(fromHex('81c0c0')), TypeError); // nil map key
  assert.throws(() => msgpack.decode('text'), TypeError);
  assert.throws(() => msgpack.encode(() => 1), TypeError);
  assert.throws(() => msgpack.encode(Symbol('s')), TypeError);
});
