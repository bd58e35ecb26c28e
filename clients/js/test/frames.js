/** One example of every frame shape of the protocol (protocol/frames.py), for the tests. */

const G = '4bec0000-0000-4000-8000-000000000002';
const U = '7a650000-0000-4000-8000-000000000001';
const M = '0fa10000-0000-4000-8000-000000000003';
const T = '2026-11-26T05:40:00.693000Z';

const invite = {
  id: '9d1e0000-0000-4000-8000-000000000004', group_id: G, inviter_id: null, invitee_id: U,
  status: 'pending', expires_at: T, created_at: T,
};
const assignment = {
  id: 'a55e0000-0000-4000-8000-000000000005', group_id: G, title: 'Problem set 4',
  description: 'Chain rule, &lt;all&gt; of it', due_at: T, created_by: U, created_at: T, updated_at: T,
};

export const CLIENT_FRAMES = [
  { type: 'auth', token: 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln' },
  { type: 'subscribe', group_id: G, ref: 1 },
  { type: 'subscribe', group_id: G, since_seq: 4_294_967_296, ref: 'r-2' },
  { type: 'unsubscribe', group_id: G, ref: 3 },
  { type: 'send', group_id: G, body: 'yes: use the chain rule ∂f/∂x 🎓', client_msg_id: 'm-1', ref: 70000 },
  { type: 'typing', group_id: G },
  { type: 'read', group_id: G, seq: 4 },
  { type: 'refresh', token: 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln', ref: 5 },
  { type: 'ping', ref: 'hb' },
];

export const SERVER_FRAMES = [
  { type: 'ready', user_id: U, session_id: '2b1c', heartbeat_s: 20.5 },
  { type: 'ready', user_id: U, session_id: '2b1c', heartbeat_s: 20, ref: 5 },
  { type: 'subscribed', group_id: G, last_seq: 0, online: [], recovered: false, ref: 1 },
  { type: 'subscribed', group_id: G, last_seq: 65536, online: [U, M], recovered: true },
  { type: 'unsubscribed', group_id: G },
  { type: 'ack', client_msg_id: 'm-1', message_id: M, seq: 4, created_at: T, ref: 70000 },
  { type: 'pong', ref: 'hb' },
  { type: 'message', group_id: G, seq: 3, message_id: M, author_id: null, body: 'did anyone solve 4b?', created_at: T, client_msg_id: 'k-17' },
  { type: 'message_edited', group_id: G, message_id: M, seq: 3, body: 'edited', edited_at: T },
  { type: 'message_deleted', group_id: G, message_id: M, seq: 3 },
  { type: 'presence', group_id: G, user_id: U, status: 'online' },
  { type: 'presence_diff', group_id: G, online: [U], offline: [] },
  { type: 'typing', group_id: G, user_id: U },
  { type: 'read', group_id: G, seq: 255 },
  { type: 'invite', invite },
  { type: 'assignment', action: 'updated', assignment },
  { type: 'member', group_id: G, user_id: U, action: 'left', role: null },
  { type: 'member', group_id: G, user_id: U, action: 'role_changed', role: 'admin' },
  { type: 'error', code: 'VALIDATION_ERROR', message: 'Expected `str` of length >= 1 - at `$.body`', ref: 3 },
  {
    type: 'notification',
    notification: { id: 'b0b00000-0000-4000-8000-000000000006', kind: 'invite.received', group_id: G, data: invite, read_at: null, created_at: T },
  },
];
