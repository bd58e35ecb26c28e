// The StudyBuddy web app: signs in (tokens in memory, the refresh cookie restores a session on
// reload), lists the person's groups with unread badges, and keeps one socket (the SDK) that
// follows every group: live messages, presence, typing, invites, assignments, notifications.

import { StudyBuddyClient } from '/sdk/studybuddy.js';
import { Api } from './api.js';
import { $, h, announce, onSubmit, unescapeHtml } from './dom.js';
import { Room, normalizeMessage, wireRoomControls } from './room.js';
import { wirePanels } from './panels.js';

const CONNECTION_LIMIT = 4009; // a user's 4th socket is refused: at most 3 at once
const STORE_LIMIT = 300; // live messages kept per group while its room is closed

const api = new Api();
// Tabs of one browser tell each other about signing out: a shared computer keeps no live tab.
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('studybuddy') : null;
const state = {
  me: null,
  client: null,
  groups: new Map(), // id -> group (REST shape)
  unread: new Map(), // id -> count
  online: new Map(), // id -> Set of user ids
  stores: new Map(), // id -> Map seq -> message
  members: new Map(), // id -> Map user id -> member
  names: new Map(), // user id -> display name (unescaped)
  lookups: new Map(), // user id -> the name lookup in flight
  lookupAgainAt: new Map(), // user id -> when a failed lookup may be tried again
  room: null,
  panels: null, // opens a dialog for a view link (#/notifications, #/settings/notifications)
  everReady: false,
  lastClose: null, // the code of the socket's last close, until it is ready again
};

/** What the room and the panels use. */
const app = {
  api,
  get client() { return state.client; },
  get me() { return state.me; },
  store(groupId) {
    if (!state.stores.has(groupId)) state.stores.set(groupId, new Map());
    return state.stores.get(groupId);
  },
  online(groupId) { return state.online.get(groupId) ?? new Set(); },
  members(groupId) { return state.members.get(groupId) ?? new Map(); },
  group(groupId) { return state.groups.get(groupId); },
  nameOf,
  markRead,
  send,
  report,
  addGroup,
  openGroup: (groupId) => { location.hash = `#/groups/${groupId}`; },
  refreshUnread,
  signOut,
  flash,
  nameLater,
};

// --- start ---

async function boot() {
  api.onSignedOut = () => location.reload();
  tabs?.addEventListener('message', ({ data }) => {
    if (data?.type === 'signed-out' && state.me) endSession();
  });
  wireAuthForms();
  const link = emailLink();
  if (link?.page === 'reset-password') {
    showReset(link.token);
    return;
  }
  const verified = link?.page === 'verify-email' ? await verifyEmail(link.token) : null;
  if (api.hasSessionCookie() && (await resumeSession())) {
    if (verified) flash(verified); // the signed-out view's notice is hidden now
    return;
  }
  showAuth();
}

/** Sign out here and in the browser's other tabs. */
async function signOut() {
  state.client?.close();
  await api.logout().catch(() => {});
  tabs?.postMessage({ type: 'signed-out' });
  endSession();
}

/** Leave the signed-in page (another tab signed out, or this one did). */
function endSession() {
  state.client?.close();
  location.hash = '';
  location.reload();
}

/**
 * Sign in again by the refresh cookie. Refreshes share the sign-in limit of the address
 * (a school behind one NAT shares it): a 429 waits its Retry-After and tries again, since
 * the sign-in form would meet the same limit. False: no session to resume.
 */
async function resumeSession() {
  for (;;) {
    try {
      await api.refresh();
      break;
    } catch (error) {
      if (error.status !== 429) return false;
      report(error);
      await new Promise((resolve) => setTimeout(resolve, (error.retryAfter ?? 5) * 1000));
    }
  }
  try {
    await startShell();
    return true;
  } catch {
    return false;
  }
}

/** A link from an account email (`#/verify-email?token=...`), taken out of the address bar. */
function emailLink() {
  const match = /^#\/(verify-email|reset-password)\?(.*)$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname);
  return { page: match[1], token: new URLSearchParams(match[2]).get('token') ?? '' };
}

function notice(text) {
  $('auth-notice').textContent = text;
  $('auth-notice').hidden = false;
}

/** Use a verification link; the outcome is shown, and returned for a signed-in page. */
async function verifyEmail(token) {
  let text = 'Your email address is verified.';
  try {
    await api.request('POST', '/auth/email/verify', { body: { token }, auth: false });
  } catch (error) {
    text = `This verification link did not work: ${error.message}`;
  }
  notice(text);
  return text;
}

function showReset(token) {
  $('reset-form').elements.token.value = token;
  $('reset-form').hidden = false;
  showAuth();
  $('reset-password').focus();
}

function showAuth() {
  $('loading').hidden = true;
  $('shell').hidden = true;
  $('auth-view').hidden = false;
  $('login-email').focus();
}

function wireAuthForms() {
  onSubmit($('login-form'), async (fields) => {
    try {
      await api.login(fields.get('email'), fields.get('password'), fields.get('totp_code'));
    } catch (error) {
      if (error.code !== 'MFA_REQUIRED') throw error;
      const totp = $('login-totp');
      const wasShown = !$('login-totp-field').hidden;
      $('login-totp-field').hidden = false;
      totp.focus();
      if (!wasShown) return;
      error.details = { ...error.details, fields: [{ field: 'totp_code', message: 'wrong or already used code' }] };
      throw error;
    }
    await startShell();
  });
  $('forgot-button').addEventListener('click', () => {
    $('forgot-form').hidden = false;
    $('forgot-email').value = $('login-email').value;
    $('forgot-email').focus();
  });
  $('forgot-cancel').addEventListener('click', () => {
    $('forgot-form').hidden = true;
    $('forgot-button').focus();
  });
  onSubmit($('forgot-form'), async (fields, form) => {
    const body = { email: fields.get('email') };
    const result = await api.request('POST', '/auth/password/forgot', { body, auth: false });
    form.hidden = true;
    notice(result?.data?.detail ?? 'If an account has this address, a reset link is on its way.');
    $('auth-notice').focus();
  });
  onSubmit($('reset-form'), async (fields, form) => {
    const body = { token: fields.get('token'), new_password: fields.get('new_password') };
    if (fields.get('totp_code')) body.totp_code = fields.get('totp_code');
    await api.request('POST', '/auth/password/reset', { body, auth: false });
    form.hidden = true;
    notice('Your new password is set: sign in with it.');
    $('login-email').focus();
  });
  onSubmit($('register-form'), async (fields) => {
    const body = {
      email: fields.get('email'),
      username: fields.get('username'),
      password: fields.get('password'),
    };
    if (fields.get('display_name')) body.display_name = fields.get('display_name');
    await api.register(body);
    await api.login(body.email, body.password);
    await startShell();
  });
}

async function startShell() {
  state.me = api.user;
  state.names.set(state.me.id, unescapeHtml(state.me.display_name || state.me.username));
  state.client = new StudyBuddyClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws`,
    getToken: ({ force }) => api.token({ force }),
  });
  wireSocket(state.client);
  $('loading').hidden = true;
  $('auth-view').hidden = true;
  $('shell').hidden = false;
  wireShell();
  await loadGroups();
  state.client.connect().catch((error) => report(error));
  for (const groupId of state.groups.keys()) follow(groupId);
  window.addEventListener('hashchange', route);
  state.panels = wirePanels(app);
  await route();
  if (!state.room && !document.querySelector('dialog[open]')) $('groups-title').focus();
}

function wireShell() {
  wireRoomControls(app, () => state.room);
  $('back-button').addEventListener('click', () => { location.hash = '#/'; });
  $('leave-button').addEventListener('click', () => leave().catch(report));
  window.addEventListener('online', () => state.client?.reconnectNow());
  window.addEventListener('offline', () => showConnection(state.client?.state ?? 'reconnecting'));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    state.client?.reconnectNow();
    state.room?.visible();
  });
}

// --- groups ---

async function loadGroups() {
  const [groups, unread] = await Promise.all([
    api.get('/study-groups', { 'filter[member]': 'me', sort: 'name', page_size: 100 }),
    api.get('/users/me/unread'),
  ]);
  state.groups = new Map(groups.data.map((group) => [group.id, group]));
  state.unread = new Map(unread.data.map((row) => [row.group_id, row.unread]));
  renderGroups();
}

async function refreshUnread() {
  const unread = await api.get('/users/me/unread');
  state.unread = new Map(unread.data.map((row) => [row.group_id, row.unread]));
  if (state.room) state.unread.set(state.room.id, 0);
  renderGroups();
}

function renderGroups() {
  const groups = [...state.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
  $('no-groups').hidden = groups.length > 0;
  $('group-list').replaceChildren(...groups.map((group) => {
    const unread = state.unread.get(group.id) ?? 0;
    const current = state.room?.id === group.id;
    return h('li', {},
      h('button', {
        type: 'button', dataset: { groupId: group.id }, 'aria-current': current ? 'true' : 'false',
        onclick: () => app.openGroup(group.id),
      },
      h('span', { class: 'group-name', dir: 'auto' }, unescapeHtml(group.name)),
      unread > 0 ? h('span', { class: 'badge', dataset: { unread } },
        String(unread), h('span', { class: 'visually-hidden' }, ' unread')) : null));
  }));
}

/** A group the person just joined or created: list it, follow it, open it. */
function addGroup(group) {
  const known = state.groups.has(group.id);
  state.groups.set(group.id, group);
  renderGroups();
  if (!known) follow(group.id);
}

function follow(groupId) {
  state.client.subscribe(groupId).catch((error) => {
    if (error.code === 'NOT_FOUND') removeGroup(groupId);
  });
}

function removeGroup(groupId) {
  if (!state.groups.has(groupId)) return;
  const name = unescapeHtml(state.groups.get(groupId).name);
  state.groups.delete(groupId);
  state.stores.delete(groupId);
  state.unread.delete(groupId);
  if (state.room?.id === groupId) location.hash = '#/';
  renderGroups();
  announce(`You are no longer in ${name}.`);
}

async function leave() {
  const room = state.room;
  if (!room || !window.confirm(`Leave ${unescapeHtml(room.group.name)}?`)) return;
  await api.delete(`/study-groups/${room.id}/members/${state.me.id}`);
  state.client.unsubscribe(room.id).catch(() => {});
  removeGroup(room.id);
}

// --- the room ---

async function route() {
  const view = /^#\/(invites|notifications|settings\/notifications)$/.exec(location.hash)?.[1];
  if (view) { // a link from a notification email
    history.replaceState(null, '', '#/');
    state.panels?.open(view);
  }
  const match = /^#\/groups\/([0-9a-f-]{36})$/.exec(location.hash);
  const groupId = match?.[1] ?? null;
  if (state.room?.id === groupId) return;
  state.room?.close();
  state.room = null;
  $('shell').classList.toggle('in-room', Boolean(groupId));
  const group = groupId ? state.groups.get(groupId) : null;
  $('room').hidden = !group;
  $('welcome').hidden = Boolean(group);
  renderGroups();
  if (!group) {
    if (groupId) location.hash = '#/';
    return;
  }
  const room = new Room(app, group);
  state.room = room;
  state.unread.set(groupId, 0);
  renderGroups();
  $('members-panel').hidden = true;
  $('assignments-panel').hidden = true;
  for (const id of ['members-button', 'assignments-button']) $(id).setAttribute('aria-expanded', 'false');
  try {
    await loadMembers(groupId);
    if (state.room !== room) return;
    await room.open();
    $('message-input').focus();
  } catch (error) {
    report(error);
  }
}

async function loadMembers(groupId) {
  const page = await api.get(`/study-groups/${groupId}/members`, { page_size: 100 });
  const members = new Map(page.data.map((member) => [member.user_id, member]));
  for (const member of members.values()) {
    state.names.set(member.user_id, unescapeHtml(member.display_name || member.username));
  }
  state.members.set(groupId, members);
}

function nameOf(userId) {
  if (!userId) return 'Deleted account';
  if (userId === state.me.id) return 'You';
  const known = state.names.get(userId);
  if (known) return known;
  lookUp(userId).then((found) => { if (found) state.room?.renderHeader(); });
  return 'Someone';
}

/**
 * Look a user's name up once: callers at the same time share one request, a 404 is a former
 * member, and another failure (a 429 among them) may be tried again after 10 s. Resolves
 * true when a name was learnt.
 */
function lookUp(userId) {
  if (state.lookups.has(userId)) return state.lookups.get(userId);
  if ((state.lookupAgainAt.get(userId) ?? 0) > Date.now()) return Promise.resolve(false);
  const lookup = api.get(`/users/${userId}`).then((result) => {
    state.names.set(userId, unescapeHtml(result.data.display_name || result.data.username));
    return true;
  }, (error) => {
    if (error.status === 404) state.names.set(userId, 'Former member');
    else state.lookupAgainAt.set(userId, Date.now() + 10_000);
    return error.status === 404;
  }).finally(() => state.lookups.delete(userId));
  state.lookups.set(userId, lookup);
  return lookup;
}

/** A user's name, looked up first when it is not known yet. */
async function nameLater(userId) {
  if (userId && userId !== state.me.id && !state.names.has(userId)) await lookUp(userId);
  return nameOf(userId);
}

function markRead(groupId, seq) {
  state.client.markRead(groupId, seq);
  if ((state.unread.get(groupId) ?? 0) !== 0) {
    state.unread.set(groupId, 0);
    renderGroups();
  }
}

function newClientMsgId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function send(room, body) {
  const clientMsgId = newClientMsgId();
  room.addPending(clientMsgId, body);
  state.client.send(room.id, body, { clientMsgId }).then(
    (ack) => state.room?.acked(ack),
    (error) => (state.room?.id === room.id ? state.room : room).sendFailed(clientMsgId, error),
  );
  showConnection(state.client.state);
}

// --- the socket ---

function wireSocket(client) {
  client.on('state', ({ state: now }) => showConnection(now));
  client.on('disconnected', ({ code }) => {
    state.lastClose = code;
    showConnection(client.state);
  });
  client.on('ready', () => {
    if (state.everReady) announce('Reconnected.');
    state.everReady = true;
    state.lastClose = null;
  });
  client.on('message', onMessage);
  client.on('ack', () => showConnection(client.state));
  client.on('message_edited', (frame) => {
    const store = app.store(frame.group_id);
    const known = store.get(frame.seq);
    if (known) store.set(frame.seq, { ...known, body: frame.body, edited_at: frame.edited_at });
    if (state.room?.id === frame.group_id) state.room.onEdited(frame);
  });
  client.on('message_deleted', (frame) => {
    app.store(frame.group_id).delete(frame.seq);
    if (state.room?.id === frame.group_id) state.room.onDeleted(frame);
  });
  client.on('subscribed', (frame) => {
    state.online.set(frame.group_id, new Set(frame.online));
    if (state.room?.id === frame.group_id) state.room.renderHeader();
  });
  client.on('presence', (frame) => {
    const online = state.online.get(frame.group_id) ?? new Set();
    if (frame.status === 'online') online.add(frame.user_id);
    else online.delete(frame.user_id);
    state.online.set(frame.group_id, online);
    if (state.room?.id === frame.group_id) state.room.renderHeader();
  });
  client.on('typing', (frame) => {
    if (state.room?.id === frame.group_id) state.room.onTyping(frame.user_id);
  });
  client.on('read', () => refreshUnread().catch(() => {}));
  client.on('recovery', onRecovery);
  client.on('unsubscribed', ({ group_id: groupId }) => removeGroup(groupId));
  client.on('member', onMember);
  client.on('assignment', (frame) => {
    if (state.room?.id === frame.assignment.group_id) state.room.onAssignment(frame);
  });
  client.on('error', (error) => console.warn('StudyBuddy socket:', error.code, error.message));
}

function onMessage(frame) {
  const message = normalizeMessage(frame);
  const store = app.store(frame.group_id);
  store.set(message.seq, message);
  const room = state.room?.id === frame.group_id ? state.room : null;
  if (room) {
    room.onMessage(message);
  } else {
    while (store.size > STORE_LIMIT) store.delete(store.keys().next().value);
  }
  if (message.author_id !== state.me.id && (!room || document.visibilityState !== 'visible')) {
    state.unread.set(frame.group_id, (state.unread.get(frame.group_id) ?? 0) + 1);
  }
  renderGroups();
}

/** The socket could not replay everything that was missed: reload from history. */
function onRecovery({ group_id: groupId, recovered }) {
  if (recovered) return;
  app.store(groupId).clear();
  if (state.room?.id === groupId) state.room.reload().catch(report);
  refreshUnread().catch(() => {});
}

function onMember(frame) {
  if (frame.user_id === state.me.id && (frame.action === 'kicked' || frame.action === 'left')) {
    removeGroup(frame.group_id);
    return;
  }
  if (frame.user_id === state.me.id && frame.action === 'role_changed') {
    const group = state.groups.get(frame.group_id);
    if (group) group.role = frame.role;
  }
  if (!state.groups.has(frame.group_id)) {
    // This person joined in another tab (or accepted an invite there): follow it here too.
    if (frame.user_id === state.me.id && frame.action === 'joined') {
      api.get(`/study-groups/${frame.group_id}`).then((result) => addGroup(result.data)).catch(() => {});
    }
    return;
  }
  api.get(`/study-groups/${frame.group_id}`).then((result) => {
    state.groups.set(frame.group_id, result.data);
    if (state.room?.id !== frame.group_id) return null;
    state.room.group = result.data;
    return loadMembers(frame.group_id).then(() => state.room?.renderHeader());
  }).catch(() => {});
}

/** The banner: shown while the socket is not ready (after it first was), with pending sends. */
function showConnection(now) {
  document.body.dataset.connection = now;
  const banner = $('connection');
  const waiting = state.client?.outbox.length ?? 0;
  const offline = navigator.onLine === false;
  const down = offline || (now !== 'ready' && (state.everReady || now === 'reconnecting'));
  const queued = waiting ? ` ${waiting} message${waiting === 1 ? '' : 's'} waiting to send.` : '';
  if (now === 'closed') banner.textContent = 'Disconnected. Reload the page to reconnect.';
  else if (offline) banner.textContent = `You are offline.${queued}`;
  else if (state.lastClose === CONNECTION_LIMIT && down) {
    banner.textContent = 'StudyBuddy is open in 3 other tabs or devices: close one to connect here.';
  } else if (down) banner.textContent = `Reconnecting…${queued}`;
  banner.hidden = !(down || now === 'closed');
}

let toastTimer = null;
let flashTimer = null;

/** Tell the person something went well (a status, not an alert). */
function flash(text) {
  const element = $('flash');
  element.textContent = text;
  element.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { element.hidden = true; }, 8_000);
}

/** Tell the person about a failure that belongs to no form. */
function report(error) {
  const toast = $('toast');
  toast.textContent = error?.message ?? String(error);
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 8_000);
}

boot().catch((error) => {
  console.error(error);
  $('loading').textContent = `StudyBuddy could not start: ${error.message}`;
});
