// TypeScript declarations for studybuddy.js (the StudyBuddy socket protocol v1, contract section 4).
// Field names follow protocol/frames.py. Ids are UUID strings; times are ISO-8601 UTC strings.

export declare const JSON_SUBPROTOCOL: 'studybuddy.v1.json';
export declare const MSGPACK_SUBPROTOCOL: 'studybuddy.v1.msgpack';
export declare const MAX_BODY_CHARS: 4000;
export declare const MAX_CLIENT_MSG_ID_CHARS: 64;

export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  UNSUPPORTED_DATA: 1003;
  ABNORMAL: 1006;
  INVALID_PAYLOAD: 1007;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  SERVICE_RESTART: 1012;
  TRY_AGAIN_LATER: 1013;
  UNPARSEABLE: 4000;
  UNAUTHORIZED: 4001;
  FLOODING: 4008;
  CONNECTION_LIMIT: 4009;
  SLOW_CONSUMER: 4010;
}>;

export type Uuid = string;
export type Timestamp = string;
/** Echoed on the reply or error a client frame causes. */
export type Ref = string | number;
export type Role = 'owner' | 'admin' | 'member';
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'NOT_SUBSCRIBED'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'INTERNAL_ERROR'
  | 'SERVICE_UNAVAILABLE';
/** Codes the SDK itself uses on {@link StudyBuddyError}. */
export type ClientErrorCode =
  | 'CLOSED'
  | 'DISCONNECTED'
  | 'NOT_CONNECTED'
  | 'UNSUBSCRIBED'
  | 'TOKEN_ERROR'
  | 'CONNECT_FAILED'
  | 'REFRESH_FAILED'
  | 'DECODE_ERROR'
  | 'SEND_FAILED';

// --- objects carried inside frames (contract section 2) ---

export interface Invite {
  id: Uuid;
  group_id: Uuid;
  inviter_id: Uuid | null;
  invitee_id: Uuid;
  status: 'pending' | 'accepted' | 'declined' | 'expired';
  expires_at: Timestamp;
  created_at: Timestamp;
}

export interface Assignment {
  id: Uuid;
  group_id: Uuid;
  title: string;
  description: string;
  due_at: Timestamp;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type NotificationKind = 'invite.received' | 'assignment.created' | 'assignment.due_soon' | 'mention';

export interface Notification {
  id: Uuid;
  kind: NotificationKind | (string & {});
  group_id: Uuid | null;
  /** The invite, assignment or message the notification is about. */
  data: Record<string, unknown>;
  read_at: Timestamp | null;
  created_at: Timestamp;
}

// --- client -> server frames ---

export interface AuthFrame { type: 'auth'; token: string; ref?: Ref }
export interface SubscribeFrame { type: 'subscribe'; group_id: Uuid; since_seq?: number | null; presence?: 'each' | 'diff' | 'none'; ref?: Ref }
export interface UnsubscribeFrame { type: 'unsubscribe'; group_id: Uuid; ref?: Ref }
export interface SendFrame { type: 'send'; group_id: Uuid; body: string; client_msg_id: string; ref?: Ref }
export interface TypingFrame { type: 'typing'; group_id: Uuid; ref?: Ref }
export interface ReadFrame { type: 'read'; group_id: Uuid; seq: number; ref?: Ref }
export interface RefreshFrame { type: 'refresh'; token: string; ref?: Ref }
export interface PingFrame { type: 'ping'; ref?: Ref }

export type ClientFrame =
  | AuthFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | SendFrame
  | TypingFrame
  | ReadFrame
  | RefreshFrame
  | PingFrame;

// --- server -> client frames ---

export interface ReadyFrame { type: 'ready'; user_id: Uuid; session_id: string; heartbeat_s: number; ref?: Ref }
export interface SubscribedFrame {
  type: 'subscribed';
  group_id: Uuid;
  /** 0 before any message. */
  last_seq: number;
  online: Uuid[];
  /** Only meaningful after a subscribe with `since_seq`: true when every missed message was replayed. */
  recovered: boolean;
  ref?: Ref;
}
export interface UnsubscribedFrame { type: 'unsubscribed'; group_id: Uuid; ref?: Ref }
export interface AckFrame { type: 'ack'; client_msg_id: string; message_id: Uuid; seq: number; created_at: Timestamp; ref?: Ref }
export interface PongFrame { type: 'pong'; ref?: Ref }
export interface MessageFrame {
  type: 'message';
  group_id: Uuid;
  seq: number;
  message_id: Uuid;
  author_id: Uuid | null;
  /** HTML-escaped by the server: display as text. */
  body: string;
  created_at: Timestamp;
  client_msg_id: string;
}
export interface MessageEditedFrame { type: 'message_edited'; group_id: Uuid; message_id: Uuid; seq: number; body: string; edited_at: Timestamp }
export interface MessageDeletedFrame { type: 'message_deleted'; group_id: Uuid; message_id: Uuid; seq: number }
export interface PresenceFrame { type: 'presence'; group_id: Uuid; user_id: Uuid; status: 'online' | 'offline' }
/** Batched presence changes (the SDK asks for them and also emits one `presence` per change). */
export interface PresenceDiffFrame { type: 'presence_diff'; group_id: Uuid; online: Uuid[]; offline: Uuid[] }
export interface TypingNoticeFrame { type: 'typing'; group_id: Uuid; user_id: Uuid }
export interface ReadMarkerFrame { type: 'read'; group_id: Uuid; seq: number }
export interface InviteFrame { type: 'invite'; invite: Invite }
export interface AssignmentFrame { type: 'assignment'; action: 'created' | 'updated' | 'deleted'; assignment: Assignment }
export interface MemberFrame {
  type: 'member';
  group_id: Uuid;
  user_id: Uuid;
  action: 'joined' | 'left' | 'kicked' | 'role_changed';
  role: Role | null;
}
export interface NotificationFrame { type: 'notification'; notification: Notification }
export interface ErrorFrame { type: 'error'; code: ErrorCode | (string & {}); message: string; ref?: Ref }

export type ServerFrame =
  | ReadyFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AckFrame
  | PongFrame
  | MessageFrame
  | MessageEditedFrame
  | MessageDeletedFrame
  | PresenceFrame
  | TypingNoticeFrame
  | ReadMarkerFrame
  | InviteFrame
  | AssignmentFrame
  | MemberFrame
  | NotificationFrame
  | ErrorFrame;

// --- the client ---

export type ConnectionState = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'reconnecting' | 'closed';

/** What a close means: `reauth` (4001), `later` (1001/1012/1013, HTTP 503), `limit` (4008/4009), `retry`. */
export type CloseAction = 'reauth' | 'later' | 'limit' | 'retry';

export interface BackoffOptions {
  /** First window in ms (default 500): attempt n waits uniform [0, min(cap, base * 2^n)]. */
  baseMs?: number;
  /** Largest window in ms (default 30000). */
  capMs?: number;
  /** Smallest window after a "retry later" answer (default 2000). */
  retryLaterMs?: number;
}

/**
 * Pacing of `send` frames, to stay within the server's message rate (contract section 4: 10
 * messages/s per user, burst 30; more than 10 `RATE_LIMITED` answers within 10 s close the
 * socket with 4008). Set these to the node's `WS_MESSAGE_RATE` and `WS_MESSAGE_BURST` when they
 * are not the defaults.
 */
export interface SendRateOptions {
  /** Sends per second once the burst is spent (default 10). */
  perSecond?: number;
  /** Sends that may go out at once, the bucket's size (default 30). It starts full and refills at `perSecond`. */
  burst?: number;
  /**
   * Sends awaiting their `ack` or `error` at a time (default 5): the most that can be refused
   * together. After a `RATE_LIMITED` or `SERVICE_UNAVAILABLE` pause it is 1 until the next ack.
   * Whatever this says, and also with `sendRate: null`, the sends awaiting an answer plus the
   * `RATE_LIMITED` answers of the last 10 s stay at 8 or fewer (the server closes at over 10).
   */
  maxInFlight?: number;
}

/** Timer functions (inject a fake in tests). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/**
 * The subset of the WebSocket API the client uses (browser `WebSocket`, or `ws` in Node). The
 * handlers take `any` events so that both the DOM's and `ws`'s event types fit; the client reads
 * `data` from a message event, `code` and `reason` from a close event.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol?: string;
  /** 3 once closed. */
  readonly readyState?: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: destroy the connection at once (used when a close handshake does not finish). */
  terminate?(): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
}
/**
 * A WebSocket class: the browser's `WebSocket`, Node 22's global one, or `ws`'s default export
 * (which type-checks as is with `@types/ws`). The client calls `new WebSocket(url, [subprotocol])`.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface TokenRequest {
  /**
   * true when the last token was refused (4001), has expired, or is about to (`refresh`):
   * return a new one (e.g. from `POST /api/v1/auth/refresh`), not a cached one.
   */
  force: boolean;
}

export interface ClientOptions {
  /** `ws(s)://<host>/api/v1/ws` */
  url: string;
  /** Returns an access JWT; called before every connection and every refresh. */
  getToken: (request: TokenRequest) => Promise<string> | string;
  /** `json` (default) or `msgpack`. */
  format?: 'json' | 'msgpack';
  /** Defaults to the global `WebSocket` (browsers, Node >= 22); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  backoff?: BackoffOptions;
  /** Send `refresh` this long before `exp` (default 60000), or half-way for short tokens. */
  refreshMarginMs?: number;
  /** Wait before trying a failed refresh again (default 5000). */
  refreshRetryMs?: number;
  /**
   * 4001 refusals in a row, before any `ready`, after which the client stops (default 3):
   * the 3rd refusal stops it. 0 or 1: the first refusal does.
   */
  maxAuthFailures?: number;
  /**
   * A connection attempt (getting the token, the WebSocket handshake, `auth`) that brings no
   * `ready` within this long is given up and retried with backoff like a dropped one
   * (default 15000; 0: no limit). The `disconnected` event says `no ready within 15000 ms`, or,
   * when `getToken` has not answered, an `error` event `TOKEN_ERROR` comes instead.
   */
  connectTimeoutMs?: number;
  /**
   * Send a `ping` frame this often while ready (default: half of `ready.heartbeat_s`, 10000 with
   * the server's default 20 s; 0: off). Together with `pingTimeoutMs` this notices a node that
   * froze or a network that went silent, which a browser or `ws` may not report for minutes.
   */
  pingIntervalMs?: number;
  /** Without a `pong` within this long, drop the connection (`no pong`) and reconnect (default 10000). */
  pingTimeoutMs?: number;
  /**
   * Pacing of `send` frames (default `{ perSecond: 10, burst: 30, maxInFlight: 5 }`, the
   * server's defaults); null drops the bucket and `maxInFlight` (the pause after
   * `RATE_LIMITED` and the limit of 8 awaiting an answer still apply).
   */
  sendRate?: SendRateOptions | null;
  /** At most one `typing` frame per group this often (default 2000). */
  typingIntervalMs?: number;
  clock?: Clock;
  /** Uniform in [0, 1) (default Math.random). */
  random?: () => number;
  /** Makes `client_msg_id`s (default crypto.randomUUID, or 32 hex digits). */
  newClientMsgId?: () => string;
}

export interface StateEvent { state: ConnectionState; previous: ConnectionState }
export interface DisconnectedEvent {
  /** The close code; 1006 also when the client gave the connection up (`no pong`, `no ready within ... ms`). */
  code: number;
  reason: string;
  /** The HTTP status of a refused handshake, when the WebSocket implementation reports it (ws does, browsers do not). */
  httpStatus: number | null;
  action: CloseAction;
  /** When the next attempt starts; null when the client stopped (the token was refused too often). */
  delayMs: number | null;
}
/** After every subscribe with `since_seq`. On `recovered: false`, reload history over REST:
 * `GET /api/v1/study-groups/{group_id}/messages?after_seq={since_seq}&sort=seq`. `lastSeq()`
 * is then `last_seq`, also when that is below `since_seq` (the group's log is behind the client). */
export interface RecoveryEvent { group_id: Uuid; recovered: boolean; since_seq: number; last_seq: number }
/** A message arrived past a hole; the client re-subscribes with `since_seq` to fill it. */
export interface GapEvent { group_id: Uuid; expected_seq: number; seq: number }
/** The server ended a subscription (kicked, group deleted), or refused to renew it (`error`). */
export interface UnsubscribedEvent { group_id: Uuid; error?: StudyBuddyError }

export interface ClientEvents {
  state: StateEvent;
  ready: ReadyFrame;
  disconnected: DisconnectedEvent;
  subscribed: SubscribedFrame;
  recovery: RecoveryEvent;
  gap: GapEvent;
  unsubscribed: UnsubscribedEvent;
  /** Each seq once, in order, per group. */
  message: MessageFrame;
  message_edited: MessageEditedFrame;
  message_deleted: MessageDeletedFrame;
  presence: PresenceFrame;
  presence_diff: PresenceDiffFrame;
  typing: TypingNoticeFrame;
  read: ReadMarkerFrame;
  member: MemberFrame;
  invite: InviteFrame;
  assignment: AssignmentFrame;
  notification: NotificationFrame;
  ack: AckFrame;
  /** Error frames without a pending request, and SDK problems (TOKEN_ERROR, CONNECT_FAILED, DECODE_ERROR...). */
  error: StudyBuddyError;
  /** Every decoded frame, before the client acts on it (for logging). */
  frame: ServerFrame | { type: string; [field: string]: unknown };
}

export declare class StudyBuddyError extends Error {
  constructor(code: string, message: string, extra?: { frame?: ErrorFrame; cause?: unknown });
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  /** The server's `error` frame, when the error came from the server. */
  readonly frame?: ErrorFrame;
}

export interface OutboxEntry { type: 'send'; group_id: Uuid; body: string; client_msg_id: string }

export declare class StudyBuddyClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  /** The current connection's `ready` frame, or null when not ready. */
  readonly session: ReadyFrame | null;
  /** Groups kept subscribed across reconnects. */
  readonly groups: Uuid[];
  /** Sends not yet acknowledged, oldest first. */
  readonly outbox: OutboxEntry[];
  /** The highest seq delivered for a group (or the server's `last_seq` after a subscribe), or null. */
  lastSeq(groupId: Uuid): number | null;
  on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): void;
  /** Start or resume; resolves with the next `ready`. */
  connect(): Promise<ReadyFrame>;
  /**
   * Stop for good; pending sends and subscribes reject with `CLOSED`. The socket is closed
   * with 1000; one whose close handshake is not over within 1 s is terminated (`ws`), so a
   * frozen node does not keep a Node process alive.
   */
  close(): void;
  subscribe(groupId: Uuid, options?: { sinceSeq?: number }): Promise<SubscribedFrame>;
  /** Resolves with `unsubscribed`, or null when not connected. */
  unsubscribe(groupId: Uuid): Promise<UnsubscribedFrame | null>;
  /**
   * Queued in the outbox until acked (across reconnects). The outbox goes out oldest first,
   * paced by `sendRate`; `RATE_LIMITED` or `SERVICE_UNAVAILABLE` pauses all of it and it is
   * sent again with the same `client_msg_id`.
   */
  send(groupId: Uuid, body: string, options?: { clientMsgId?: string }): Promise<AckFrame>;
  /** true when a `typing` frame went out (throttled). */
  typing(groupId: Uuid): boolean;
  markRead(groupId: Uuid, seq: number): void;
  ping(): Promise<PongFrame>;
  /** Reconnect now instead of waiting out the backoff (browser back online); true if it started. */
  reconnectNow(): boolean;
  refreshToken(): Promise<ReadyFrame>;
}

export declare function reconnectWindow(action: CloseAction, attempt: number, backoff: Required<BackoffOptions>): number;
export declare function backoffDelay(attempt: number, backoff: { baseMs: number; capMs: number }, random?: () => number): number;
export declare function closeAction(code: number, httpStatus?: number | null): CloseAction;
export declare function decodeJwt(token: string): Record<string, unknown> | null;
export declare function refreshDelay(token: string, marginMs: number, nowMs: number): number | null;

export type MsgpackValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | MsgpackValue[]
  | { [key: string]: MsgpackValue };

export declare const msgpack: Readonly<{
  encode(value: unknown): Uint8Array;
  decode(data: Uint8Array | ArrayBuffer | ArrayBufferView): MsgpackValue;
}>;
