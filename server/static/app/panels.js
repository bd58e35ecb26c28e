// Dialogs of the web app: find and join public groups, create a group, invites (received and
// sent), notifications (hidden while the server has none: GET /notifications answers 404),
// and the account (display name, email and its notification settings, two-factor
// authentication, sign out).

import { $, h, announce, formatDateTime, onSubmit, openDialog, unescapeHtml } from './dom.js';

/**
 * Wire every dialog once the person is signed in. Returns `open(view)`, which opens the
 * dialog of a link from an email: `invites`, `notifications` or `settings/notifications`.
 */
export function wirePanels(app) {
  wireFind(app);
  wireCreate(app);
  wireInvites(app);
  wireInviteSomeone(app);
  const notifications = wireNotifications(app).catch((error) => app.report(error));
  const account = wireAccount(app);
  return {
    open(view) {
      if (view === 'settings/notifications') account.open($('email-settings-form'));
      else if (view === 'invites') $('invites-button').click();
      else notifications.then(() => { if (!$('notifications-button').hidden) $('notifications-button').click(); });
    },
  };
}

// --- find and join ---

function wireFind(app) {
  const search = async (text) => {
    const params = { 'filter[visibility]': 'public', sort: '-member_count,name', page_size: 30 };
    if (text) params.search = text;
    const page = await app.api.get('/study-groups', params);
    const results = $('find-results');
    if (!page.data.length) {
      results.replaceChildren(h('li', { class: 'empty' }, text ? `No public group matches “${text}”.` : 'No public groups yet.'));
      return;
    }
    results.replaceChildren(...page.data.map((group) => findResult(app, group)));
  };
  $('find-button').addEventListener('click', () => {
    openDialog($('find-dialog'), $('find-input'));
    search($('find-input').value.trim()).catch((error) => app.report(error));
  });
  $('find-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search($('find-input').value.trim()).catch((error) => app.report(error));
  });
}

function findResult(app, group) {
  const name = unescapeHtml(group.name);
  const member = app.group(group.id) !== undefined || group.role !== null;
  const details = [group.subject ? unescapeHtml(group.subject) : null, `${group.member_count} member${group.member_count === 1 ? '' : 's'}`];
  const action = member
    ? h('button', { type: 'button', onclick: () => { $('find-dialog').close(); app.openGroup(group.id); } }, 'Open')
    : h('button', {
      type: 'button', class: 'primary', 'aria-label': `Join ${name}`,
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          const joined = await app.api.post(`/study-groups/${group.id}/join`);
          const fresh = await app.api.get(`/study-groups/${group.id}`);
          app.addGroup(fresh?.data ?? { ...group, role: joined?.data?.role ?? 'member' });
          $('find-dialog').close();
          app.openGroup(group.id);
          announce(`You joined ${name}.`);
        } catch (error) {
          event.target.disabled = false;
          app.report(error);
        }
      },
    }, 'Join');
  return h('li', { dataset: { groupId: group.id } },
    h('div', { class: 'what' },
      h('strong', { dir: 'auto' }, name),
      h('div', { class: 'meta' }, details.filter(Boolean).join(' · ')),
      group.description ? h('div', {}, unescapeHtml(group.description)) : null),
    action);
}

// --- create ---

function wireCreate(app) {
  $('create-button').addEventListener('click', () => openDialog($('create-dialog'), $('create-name')));
  onSubmit($('create-form'), async (fields, form) => {
    const body = { name: fields.get('name'), visibility: fields.get('visibility') };
    for (const key of ['subject', 'description']) if (fields.get(key)) body[key] = fields.get(key);
    const result = await app.api.post('/study-groups', body);
    app.addGroup(result.data);
    form.reset();
    $('create-dialog').close();
    app.openGroup(result.data.id);
    announce(`Group ${unescapeHtml(result.data.name)} created.`);
  });
}

// --- invites received ---

function wireInvites(app) {
  const invites = new Map();
  const groupNames = new Map();
  const render = () => {
    const pending = [...invites.values()].filter((invite) => invite.status === 'pending'
      && invite.invitee_id === app.me.id && new Date(invite.expires_at) > new Date());
    const badge = $('invites-badge');
    badge.hidden = pending.length === 0;
    badge.textContent = String(pending.length);
    $('no-invites').hidden = pending.length > 0;
    $('invite-list').replaceChildren(...pending.map((invite) => inviteItem(app, invite, groupNames, invites, render)));
  };
  const load = async () => {
    const page = await app.api.get('/invites', { 'filter[status]': 'pending', page_size: 100 });
    invites.clear();
    for (const invite of page.data) invites.set(invite.id, invite);
    await Promise.all(page.data.flatMap((invite) => [
      groupName(app, invite, groupNames), app.nameLater(invite.inviter_id)]));
    render();
  };
  $('invites-button').addEventListener('click', () => {
    openDialog($('invites-dialog'));
    load().catch((error) => app.report(error));
  });
  app.client.on('invite', async ({ invite }) => {
    invites.set(invite.id, invite);
    const [inviter] = await Promise.all([app.nameLater(invite.inviter_id), groupName(app, invite, groupNames)]);
    render();
    if (invite.invitee_id === app.me.id && invite.status === 'pending') {
      announce(`${inviter} invited you to ${groupNames.get(invite.group_id)}.`);
    }
  });
  app.client.on('member', (frame) => { // joined in another tab: its invite is settled
    if (frame.user_id === app.me.id && frame.action === 'joined') load().catch(() => {});
  });
  load().catch((error) => app.report(error));
}

async function groupName(app, invite, names) {
  const groupId = invite.group_id;
  if (invite.group_name) {
    names.set(groupId, unescapeHtml(invite.group_name));
    return;
  }
  if (names.has(groupId)) return;
  try {
    const result = await app.api.get(`/study-groups/${groupId}`);
    names.set(groupId, unescapeHtml(result.data.name));
  } catch {
    names.set(groupId, 'a private group');
  }
}

function inviteItem(app, invite, groupNames, invites, render) {
  const name = groupNames.get(invite.group_id) ?? 'a group';
  const answer = async (verb) => {
    const result = await app.api.post(`/invites/${invite.id}/${verb}`);
    invites.set(invite.id, { ...invite, status: verb === 'accept' ? 'accepted' : 'declined' });
    render();
    if (verb !== 'accept') return;
    const group = await app.api.get(`/study-groups/${invite.group_id}`);
    app.addGroup(group.data ?? result.data);
    $('invites-dialog').close();
    app.openGroup(invite.group_id);
    announce(`You joined ${name}.`);
  };
  const button = (verb, label, primary) => h('button', {
    type: 'button', class: primary ? 'primary' : '', 'aria-label': `${label} the invite to ${name}`,
    onclick: () => answer(verb).catch((error) => app.report(error)),
  }, label);
  return h('li', { dataset: { inviteId: invite.id } },
    h('div', { class: 'what' },
      h('strong', { dir: 'auto' }, name),
      h('div', { class: 'meta' }, `from ${app.nameOf(invite.inviter_id)} · until ${formatDateTime(invite.expires_at)}`)),
    h('div', { class: 'row' }, button('accept', 'Accept', true), button('decline', 'Decline', false)));
}

// --- inviting someone to the open group ---

function wireInviteSomeone(app) {
  let groupId = null;
  $('invite-button').addEventListener('click', () => {
    groupId = location.hash.split('/')[2] ?? null;
    $('invite-results').replaceChildren();
    openDialog($('invite-dialog'), $('invite-input'));
  });
  $('invite-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('invite-input').value.trim();
    if (!text || !groupId) return;
    try {
      const page = await app.api.get('/users', { search: text, page_size: 20 });
      const members = app.members(groupId);
      const people = page.data.filter((user) => user.id !== app.me.id && !members.has(user.id));
      $('invite-results').replaceChildren(...(people.length ? people.map((user) => personItem(app, groupId, user))
        : [h('li', { class: 'empty' }, `Nobody to invite matches “${text}”.`)]));
    } catch (error) {
      app.report(error);
    }
  });
}

function personItem(app, groupId, user) {
  const name = unescapeHtml(user.display_name || user.username);
  const status = h('span', { class: 'meta', role: 'status' });
  return h('li', {},
    h('div', { class: 'what' }, h('strong', { dir: 'auto' }, name), h('div', { class: 'meta' }, `@${user.username}`)),
    status,
    h('button', {
      type: 'button', class: 'primary', 'aria-label': `Invite ${name}`,
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          await app.api.post(`/study-groups/${groupId}/invites`, { user_id: user.id });
          status.textContent = 'Invited';
          button.remove();
        } catch (error) {
          status.textContent = error.message;
          button.disabled = false;
        }
      },
    }, 'Invite'));
}

// --- notifications ---

const NOTIFICATION_TEXT = {
  'invite.received': (n, app) => `${app.nameOf(n.data?.inviter_id)} invited you to ${n.data?.group_name ? unescapeHtml(n.data.group_name) : 'a group'}`,
  'assignment.created': (n) => `New assignment: ${unescapeHtml(n.data?.title ?? '')}`,
  'assignment.due_soon': (n) => `Due soon: ${unescapeHtml(n.data?.title ?? '')} (${formatDateTime(n.data?.due_at)})`,
  mention: (n, app) => `${app.nameOf(n.data?.author_id)} mentioned you: ${unescapeHtml(n.data?.body ?? '')}`,
};

async function wireNotifications(app) {
  let items;
  try {
    items = (await app.api.get('/notifications', { page_size: 50 })).data;
  } catch (error) {
    if (error.status === 404) return; // this server has no notifications yet: no bell
    throw error;
  }
  const notifications = new Map(items.map((n) => [n.id, n]));
  await Promise.all(items.map((n) => app.nameLater(n.data?.inviter_id ?? n.data?.author_id)));
  const render = () => {
    const sorted = [...notifications.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    const unread = sorted.filter((n) => !n.read_at).length;
    const badge = $('notifications-badge');
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    $('no-notifications').hidden = sorted.length > 0;
    $('read-all-button').disabled = unread === 0;
    $('notification-list').replaceChildren(...sorted.map((n) => notificationItem(app, n, notifications, render)));
  };
  $('notifications-button').hidden = false;
  $('notifications-button').addEventListener('click', () => {
    render();
    openDialog($('notifications-dialog'));
  });
  $('read-all-button').addEventListener('click', async () => {
    try {
      await app.api.post('/notifications/read-all');
      const now = new Date().toISOString();
      for (const n of notifications.values()) if (!n.read_at) n.read_at = now;
      render();
    } catch (error) {
      app.report(error);
    }
  });
  app.client.on('notification', async ({ notification }) => {
    notifications.set(notification.id, notification);
    await app.nameLater(notification.data?.inviter_id ?? notification.data?.author_id);
    render();
    announce(`Notification: ${describe(app, notification)}`);
  });
  render();
}

function describe(app, notification) {
  const text = NOTIFICATION_TEXT[notification.kind];
  return text ? text(notification, app) : notification.kind;
}

function notificationItem(app, notification, notifications, render) {
  const markRead = async () => {
    if (notification.read_at) return;
    const result = await app.api.post(`/notifications/${notification.id}/read`);
    notifications.set(notification.id, result?.data ?? { ...notification, read_at: new Date().toISOString() });
    render();
  };
  const open = async () => {
    await markRead();
    $('notifications-dialog').close();
    app.openGroup(notification.group_id);
  };
  const act = (action) => async () => {
    try {
      await action();
    } catch (error) {
      app.report(error);
    }
  };
  const openable = Boolean(notification.group_id && app.group(notification.group_id));
  return h('li', { class: notification.read_at ? '' : 'unread', dataset: { notificationId: notification.id } },
    h('div', { class: 'what' },
      h('div', {}, describe(app, notification)),
      h('time', { class: 'meta', datetime: notification.created_at }, formatDateTime(notification.created_at))),
    notification.read_at ? null : h('button', { type: 'button', onclick: act(markRead) }, 'Mark read'),
    openable ? h('button', { type: 'button', onclick: act(open) }, 'Open') : null);
}

// --- account ---

function wireAccount(app) {
  const render = () => {
    const user = app.api.user;
    $('account-who').textContent = `${unescapeHtml(user.display_name || user.username)} (@${user.username}, ${user.email})`;
    $('profile-display').value = unescapeHtml(user.display_name ?? '');
    $('mfa-status').textContent = user.mfa_enabled
      ? 'On: signing in asks for a code from your authenticator app.'
      : 'Off: turn it on to ask for a code from an authenticator app when you sign in.';
    $('mfa-setup-button').hidden = user.mfa_enabled;
    $('mfa-disable-form').hidden = !user.mfa_enabled;
    if (user.mfa_enabled) $('mfa-enable-form').hidden = true;
  };
  const open = (focus) => {
    render();
    openDialog($('account-dialog'), focus);
    loadEmailSettings(app).catch((error) => app.report(error));
  };
  $('account-button').addEventListener('click', () => open($('profile-display')));
  wireEmail(app);
  onSubmit($('profile-form'), async (fields) => {
    const result = await app.api.patch('/users/me', { display_name: fields.get('display_name') });
    app.api.user = result.data;
    render();
    announce('Display name saved.');
  });
  $('mfa-setup-button').addEventListener('click', async () => {
    try {
      const result = await app.api.post('/auth/mfa/setup');
      $('mfa-secret').textContent = result.data.secret;
      $('mfa-uri').href = result.data.otpauth_uri;
      $('mfa-enable-form').hidden = false;
      $('mfa-code').focus();
    } catch (error) {
      app.report(error);
    }
  });
  onSubmit($('mfa-enable-form'), async (fields, form) => {
    await app.api.post('/auth/mfa/enable', { code: fields.get('code') });
    app.api.user = { ...app.api.user, mfa_enabled: true };
    form.reset();
    render();
    announce('Two-factor authentication is on.');
  });
  onSubmit($('mfa-disable-form'), async (fields, form) => {
    await app.api.post('/auth/mfa/disable', { code: fields.get('code'), password: fields.get('password') });
    app.api.user = { ...app.api.user, mfa_enabled: false };
    form.reset();
    render();
    announce('Two-factor authentication is off.');
  });
  $('logout-button').addEventListener('click', () => app.signOut());
  return { open: (focus) => open(focus.querySelector('input') ?? focus) };
}

// --- email: verification and notification settings ---

const EMAIL_KINDS = ['invite.received', 'mention', 'assignment.due_soon', 'assignment.created'];

function renderEmail(app) {
  const user = app.api.user;
  $('email-status').textContent = user.email_verified
    ? `${user.email} is verified: notification emails can reach it.`
    : `${user.email} is not verified yet: use the link we emailed you. Until then you get no notification emails.`;
  $('resend-button').hidden = Boolean(user.email_verified);
}

/** The switches as stored; Save waits for them (saving unloaded switches turned emails off). */
async function loadEmailSettings(app) {
  renderEmail(app);
  const form = $('email-settings-form');
  const save = form.querySelector('button[type="submit"]');
  save.disabled = true;
  const settings = (await app.api.get('/users/me/notification-settings')).data;
  for (const kind of EMAIL_KINDS) form.elements.namedItem(kind).checked = Boolean(settings.email?.[kind]);
  save.disabled = false;
}

function wireEmail(app) {
  $('resend-button').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const result = await app.api.post('/auth/email/resend');
      app.flash(result?.data?.detail ?? 'A new verification link is on its way.');
    } catch (error) {
      app.report(error);
    } finally {
      button.disabled = false;
    }
  });
  onSubmit($('email-settings-form'), async (_fields, form) => {
    const email = Object.fromEntries(EMAIL_KINDS.map((kind) => [kind, form.elements.namedItem(kind).checked]));
    await app.api.put('/users/me/notification-settings', { email });
    announce('Email settings saved.');
    app.flash('Email settings saved.');
  });
}
