// The open chat room: history paged on scroll, live messages in seq order (each seq once),
// pending sends, typing and presence, edit and delete of one's own messages, members and
// assignments panels.

import { $, h, announce, formatTime, formatDateTime, unescapeHtml, onSubmit, toLocalInput, fromLocalInput } from './dom.js';

const PAGE_SIZE = 50;
const TYPING_SHOWN_MS = 4_000;
const NEAR_TOP_PX = 150;
const NEAR_BOTTOM_PX = 120;
const CATCH_UP_TRIES = 6;

/** A message from REST or from a `message` frame, in one shape. */
export function normalizeMessage(message) {
  return {
    id: message.id ?? message.message_id,
    group_id: message.group_id,
    seq: message.seq,
    author_id: message.author_id,
    body: message.body,
    client_msg_id: message.client_msg_id,
    created_at: message.created_at,
    edited_at: message.edited_at ?? null,
  };
}

/** Index of the first element of sorted `list` greater than `value`. */
function upperBound(list, value) {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (list[mid] <= value) low = mid + 1;
    else high = mid;
  }
  return low;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Room {
  /**
   * @param {object} app the shell: api, client, me, store(groupId), nameOf(userId),
   *   online(groupId), members(groupId), markRead(groupId, seq), role(groupId)
   * @param {object} group the group as REST returns it
   */
  constructor(app, group) {
    this.app = app;
    this.group = group;
    this.id = group.id;
    this.list = $('messages');
    this.history = $('history');
    this.seqs = []; // rendered seqs, ascending
    this.items = new Map(); // seq -> <li>
    this.pending = new Map(); // client_msg_id -> <li>
    this.typers = new Map(); // user_id -> timer
    this.hasOlder = true;
    this.loadingOlder = false;
    this.closed = false;
    this.editing = null;
    this.onScroll = () => this.#maybeLoadOlder();
  }

  // --- opening and history ---

  async open() {
    this.list.replaceChildren();
    $('older-button').hidden = true;
    $('history-start').hidden = true;
    $('typing').textContent = '';
    this.history.addEventListener('scroll', this.onScroll, { passive: true });
    this.renderHeader();
    for (const message of this.app.store(this.id).values()) this.#place(message);
    for (const entry of this.app.client.outbox) {
      if (entry.group_id === this.id) this.addPending(entry.client_msg_id, entry.body);
    }
    await this.#loadNewest();
    this.scrollToBottom();
    this.#readToEnd();
  }

  close() {
    this.closed = true;
    this.history.removeEventListener('scroll', this.onScroll);
    for (const timer of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
  }

  /** The newest page over REST; then, if history lags behind the live stream, catch up. */
  async #loadNewest() {
    const page = await this.app.api.get(`/study-groups/${this.id}/messages`, { page_size: PAGE_SIZE });
    if (this.closed) return;
    this.#merge(page.data);
    this.hasOlder = page.data.length === PAGE_SIZE;
    this.#showPagingState();
    await this.#catchUp(page.data[0]?.seq ?? 0);
  }

  /**
   * History is written just after fan-out (an acked message is in it within a second), so the
   * newest REST page may end before the first message the socket delivered: fetch the hole.
   */
  async #catchUp(restNewest) {
    let newest = restNewest;
    for (let tries = 0; tries < CATCH_UP_TRIES && !this.closed; tries += 1) {
      const firstLive = this.#firstLiveAfter(newest);
      if (firstLive === null || firstLive <= newest + 1) return;
      const page = await this.app.api.get(`/study-groups/${this.id}/messages`, {
        after_seq: newest, before_seq: firstLive, sort: 'seq', page_size: 100,
      });
      if (this.closed) return;
      this.#merge(page.data);
      if (page.data.length) newest = page.data.at(-1).seq;
      else await sleep(300);
    }
  }

  #firstLiveAfter(seq) {
    const index = upperBound(this.seqs, seq);
    return index < this.seqs.length ? this.seqs[index] : null;
  }

  async loadOlder() {
    if (this.loadingOlder || !this.hasOlder || this.closed) return;
    this.loadingOlder = true;
    const button = $('older-button');
    button.disabled = true;
    try {
      const oldest = this.seqs[0];
      const params = { page_size: PAGE_SIZE };
      if (oldest !== undefined) params.before_seq = oldest;
      const page = await this.app.api.get(`/study-groups/${this.id}/messages`, params);
      if (this.closed) return;
      const fromBottom = this.history.scrollHeight - this.history.scrollTop;
      this.#merge(page.data);
      this.history.scrollTop = this.history.scrollHeight - fromBottom;
      this.hasOlder = page.data.length === PAGE_SIZE;
      this.#showPagingState();
    } finally {
      this.loadingOlder = false;
      button.disabled = false;
    }
  }

  #maybeLoadOlder() {
    if (this.history.scrollTop < NEAR_TOP_PX) this.loadOlder().catch((error) => this.app.report(error));
    if (this.#atBottom()) this.#readToEnd();
  }

  #showPagingState() {
    $('older-button').hidden = !this.hasOlder;
    $('history-start').hidden = this.hasOlder;
  }

  /** After a recovery the socket could not fill (`recovered: false`): reload the newest page. */
  async reload() {
    this.list.replaceChildren();
    this.seqs = [];
    this.items.clear();
    for (const message of this.app.store(this.id).values()) this.#place(message);
    for (const [clientMsgId, item] of this.pending) this.list.append(item) && clientMsgId;
    await this.#loadNewest();
    this.scrollToBottom();
  }

  // --- messages ---

  #merge(messages) {
    const store = this.app.store(this.id);
    for (const raw of messages) {
      const message = normalizeMessage({ ...raw, group_id: this.id });
      const known = store.get(message.seq);
      if (known && (known.edited_at ?? '') >= (message.edited_at ?? '')) continue;
      store.set(message.seq, message);
      this.#place(message);
    }
  }

  /** A live message (already in the store). */
  onMessage(message) {
    const stick = this.#atBottom() || message.author_id === this.app.me.id;
    this.#place(message);
    this.#dropPending(message.client_msg_id, message.author_id);
    this.#stopTyping(message.author_id);
    if (message.author_id !== this.app.me.id) {
      announce(`${this.app.nameOf(message.author_id)}: ${unescapeHtml(message.body)}`);
    }
    if (stick) this.scrollToBottom();
    this.#readToEnd();
  }

  onEdited(frame) {
    const store = this.app.store(this.id);
    const message = store.get(frame.seq);
    if (!message) return;
    const updated = { ...message, body: frame.body, edited_at: frame.edited_at };
    store.set(frame.seq, updated);
    this.#place(updated);
  }

  onDeleted(frame) {
    this.app.store(this.id).delete(frame.seq);
    if (this.editing?.seq === frame.seq) {
      this.editing = null; // its editor goes with it; editing another message works again
      announce('The message you were editing was deleted.');
    }
    const item = this.items.get(frame.seq);
    if (!item) return;
    item.remove();
    this.items.delete(frame.seq);
    this.seqs.splice(this.seqs.indexOf(frame.seq), 1);
  }

  /** Render a message at its place by seq; an existing element is replaced. */
  #place(message) {
    const item = this.#render(message);
    const existing = this.items.get(message.seq);
    if (existing) {
      if (this.editing?.seq === message.seq) return; // keep the open editor
      existing.replaceWith(item);
      this.items.set(message.seq, item);
      return;
    }
    const index = upperBound(this.seqs, message.seq);
    const next = index < this.seqs.length ? this.items.get(this.seqs[index]) : this.list.querySelector('.pending');
    this.list.insertBefore(item, next ?? null);
    this.seqs.splice(index, 0, message.seq);
    this.items.set(message.seq, item);
  }

  #render(message) {
    const mine = message.author_id === this.app.me.id;
    const name = mine ? 'You' : this.app.nameOf(message.author_id);
    const text = unescapeHtml(message.body);
    const moderator = ['owner', 'admin'].includes(this.group.role);
    const remove = mine || moderator
      ? h('button', { type: 'button', class: 'link', 'aria-label': `Delete message: ${text.slice(0, 40)}`,
        onclick: () => this.#delete(message, mine) }, 'Delete')
      : null;
    const actions = mine || remove
      ? h('span', { class: 'actions' },
          mine ? h('button', { type: 'button', class: 'link', 'aria-label': `Edit message: ${text.slice(0, 40)}`,
            onclick: () => this.#edit(message) }, 'Edit') : null,
          remove)
      : null;
    return h('li', { class: `message${mine ? ' mine' : ''}`, dataset: { seq: message.seq, id: message.id } },
      h('div', { class: 'meta' },
        h('span', { class: 'author', dir: 'auto' }, name),
        h('time', { datetime: message.created_at, title: formatDateTime(message.created_at) }, formatTime(message.created_at)),
        message.edited_at ? h('span', { class: 'edited' }, '(edited)') : null,
        actions),
      h('p', { class: 'body', dir: 'auto' }, text));
  }

  #edit(message) {
    const item = this.items.get(message.seq);
    if (!item || this.editing) return;
    this.editing = message;
    const input = h('textarea', { rows: 2, maxlength: 4000, dir: 'auto', 'aria-label': 'Edit your message' });
    input.value = unescapeHtml(message.body);
    const error = h('p', { class: 'form-error', role: 'alert' });
    const finish = () => {
      if (this.editing?.seq === message.seq) this.editing = null; // not another's lock
      if (!this.items.has(message.seq)) return; // deleted meanwhile: nothing to show again
      this.#place(this.app.store(this.id).get(message.seq) ?? message);
      this.items.get(message.seq)?.querySelector('button')?.focus();
    };
    const save = async () => {
      const body = input.value;
      if (!body.trim()) return void (error.textContent = 'A message cannot be empty.');
      try {
        const result = await this.app.api.patch(`/study-groups/${this.id}/messages/${message.id}`, { body });
        const updated = normalizeMessage(result.data);
        this.app.store(this.id).set(updated.seq, updated);
        finish();
      } catch (problem) {
        error.textContent = problem.message;
      }
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        save();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        finish();
      }
    });
    const editor = h('div', { class: 'editor' }, input, error,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'primary', onclick: save }, 'Save'),
        h('button', { type: 'button', onclick: finish }, 'Cancel')));
    item.querySelector('.body').replaceWith(editor);
    input.focus();
  }

  async #delete(message, mine = true) {
    const question = mine ? 'Delete this message for everyone?'
      : `Delete this message by ${this.app.nameOf(message.author_id)} for everyone?`;
    if (!window.confirm(question)) return;
    try {
      await this.app.api.delete(`/study-groups/${this.id}/messages/${message.id}`);
      this.onDeleted({ seq: message.seq });
      announce('Message deleted.');
      $('message-input').focus();
    } catch (error) {
      this.app.report(error);
    }
  }

  // --- sending ---

  addPending(clientMsgId, body) {
    if (this.pending.has(clientMsgId)) return;
    const item = h('li', { class: 'message mine pending', dataset: { clientMsgId } },
      h('div', { class: 'meta' }, h('span', { class: 'author' }, 'You'), h('span', { class: 'state' }, 'sending…')),
      h('p', { class: 'body', dir: 'auto' }, body));
    this.pending.set(clientMsgId, item);
    this.list.append(item);
    this.scrollToBottom();
  }

  sendFailed(clientMsgId, error) {
    const item = this.pending.get(clientMsgId);
    if (!item) return;
    item.classList.add('failed');
    item.querySelector('.state').textContent = `not sent: ${error.message}`;
  }

  #dropPending(clientMsgId, authorId) {
    if (authorId !== this.app.me.id) return;
    this.pending.get(clientMsgId)?.remove();
    this.pending.delete(clientMsgId);
  }

  /** After the ack: the message frame may come first or later; drop the placeholder once shown. */
  acked(ack) {
    if (this.items.has(ack.seq)) this.#dropPending(ack.client_msg_id, this.app.me.id);
    else this.pending.get(ack.client_msg_id)?.querySelector('.state')?.replaceChildren('sent');
  }

  // --- typing and presence ---

  onTyping(userId) {
    if (userId === this.app.me.id) return;
    clearTimeout(this.typers.get(userId));
    this.typers.set(userId, setTimeout(() => this.#stopTyping(userId), TYPING_SHOWN_MS));
    this.#renderTyping();
  }

  #stopTyping(userId) {
    if (!this.typers.has(userId)) return;
    clearTimeout(this.typers.get(userId));
    this.typers.delete(userId);
    this.#renderTyping();
  }

  #renderTyping() {
    const names = [...this.typers.keys()].map((id) => this.app.nameOf(id));
    const text = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
    $('typing').textContent = text;
  }

  renderHeader() {
    const group = this.group;
    $('room-title').textContent = unescapeHtml(group.name);
    const online = this.app.online(this.id).size;
    const parts = [
      group.subject ? unescapeHtml(group.subject) : null,
      group.visibility === 'private' ? 'private' : 'public',
      `${group.member_count} member${group.member_count === 1 ? '' : 's'}`,
      `${online} online`,
    ];
    $('room-meta').textContent = parts.filter(Boolean).join(' · ');
    const admin = ['owner', 'admin'].includes(group.role);
    $('invite-button').hidden = !admin;
    $('assignment-form').hidden = !admin;
    if (!$('members-panel').hidden) this.renderMembers();
  }

  renderMembers() {
    const online = this.app.online(this.id);
    const members = [...this.app.members(this.id).values()].sort((a, b) =>
      Number(online.has(b.user_id)) - Number(online.has(a.user_id))
      || a.display_name.localeCompare(b.display_name));
    $('member-list').replaceChildren(...members.map((member) => {
      const here = online.has(member.user_id);
      return h('li', { dataset: { userId: member.user_id } },
        h('span', { class: `presence${here ? ' online' : ''}`, 'aria-hidden': 'true' }),
        h('span', { dir: 'auto' }, unescapeHtml(member.display_name || member.username)),
        h('span', { class: 'visually-hidden' }, here ? ', online' : ', offline'),
        member.role !== 'member' ? h('span', { class: 'role' }, member.role) : null,
        this.#memberActions(member));
    }));
  }

  /**
   * What the caller may do to a member (contract: owner and admins remove members, admins not
   * admins or the owner; the owner alone changes roles). Nothing for oneself: Leave does that.
   */
  #memberActions(member) {
    const me = this.group.role;
    if (member.user_id === this.app.me.id || !['owner', 'admin'].includes(me)) return null;
    const name = unescapeHtml(member.display_name || member.username);
    const act = (label, run) => h('button', { type: 'button', class: 'link', 'aria-label': `${label}: ${name}`,
      onclick: () => run().catch((error) => this.app.report(error)) }, label);
    const path = `/study-groups/${this.id}/members/${member.user_id}`;
    const setRole = (role) => async () => {
      await this.app.api.patch(path, { role });
      announce(`${name} is now ${role === 'admin' ? 'an admin' : 'a member'}.`);
    };
    const remove = async () => {
      if (!window.confirm(`Remove ${name} from ${unescapeHtml(this.group.name)}?`)) return;
      await this.app.api.delete(path);
      announce(`${name} was removed.`);
    };
    const removable = me === 'owner' || member.role === 'member';
    return h('span', { class: 'actions' },
      me === 'owner' && member.role === 'member' ? act('Make admin', setRole('admin')) : null,
      me === 'owner' && member.role === 'admin' ? act('Make member', setRole('member')) : null,
      removable && member.role !== 'owner' ? act('Remove', remove) : null);
  }

  // --- assignments ---

  async loadAssignments() {
    const page = await this.app.api.get(`/study-groups/${this.id}/assignments`, { page_size: 100 });
    if (this.closed) return;
    this.assignments = new Map(page.data.map((assignment) => [assignment.id, assignment]));
    this.renderAssignments();
  }

  onAssignment(frame) {
    if (!this.assignments) return;
    if (frame.action === 'deleted') this.assignments.delete(frame.assignment.id);
    else this.assignments.set(frame.assignment.id, frame.assignment);
    this.renderAssignments();
  }

  renderAssignments() {
    const admin = ['owner', 'admin'].includes(this.group.role);
    const now = Date.now();
    const sorted = [...(this.assignments?.values() ?? [])].sort((a, b) => a.due_at.localeCompare(b.due_at));
    $('no-assignments').hidden = sorted.length > 0;
    $('assignment-list').replaceChildren(...sorted.map((assignment) => {
      const title = unescapeHtml(assignment.title);
      const overdue = new Date(assignment.due_at).getTime() < now;
      return h('li', { dataset: { id: assignment.id } },
        h('strong', { dir: 'auto' }, title),
        h('div', { class: `due${overdue ? ' overdue' : ''}` },
          overdue ? 'Was due ' : 'Due ',
          h('time', { datetime: assignment.due_at }, formatDateTime(assignment.due_at))),
        assignment.description ? h('p', {}, unescapeHtml(assignment.description)) : null,
        admin ? h('div', { class: 'row' },
          h('button', { type: 'button', class: 'link', 'aria-label': `Edit assignment ${title}`,
            onclick: () => this.#editAssignment(assignment) }, 'Edit'),
          h('button', { type: 'button', class: 'link', 'aria-label': `Delete assignment ${title}`,
            onclick: () => this.#deleteAssignment(assignment) }, 'Delete')) : null);
    }));
  }

  #editAssignment(assignment) {
    const form = $('assignment-form');
    form.elements.id.value = assignment.id;
    form.elements.title.value = unescapeHtml(assignment.title);
    form.elements.due_at.value = toLocalInput(assignment.due_at);
    form.elements.description.value = unescapeHtml(assignment.description ?? '');
    $('assignment-form-title').textContent = 'Edit assignment';
    $('assignment-cancel').hidden = false;
    form.elements.title.focus();
  }

  async #deleteAssignment(assignment) {
    if (!window.confirm(`Delete the assignment "${unescapeHtml(assignment.title)}"?`)) return;
    try {
      await this.app.api.delete(`/study-groups/${this.id}/assignments/${assignment.id}`);
      this.onAssignment({ action: 'deleted', assignment });
    } catch (error) {
      this.app.report(error);
    }
  }

  /** Create or update from the form's fields. */
  async saveAssignment(fields) {
    const due = fromLocalInput(fields.get('due_at'));
    if (!due) throw Object.assign(new Error('Pick a due date and time.'), { fields: [{ field: 'due_at', message: 'required' }] });
    const body = { title: fields.get('title'), due_at: due, description: fields.get('description') || '' };
    const id = fields.get('id');
    const result = id
      ? await this.app.api.patch(`/study-groups/${this.id}/assignments/${id}`, body)
      : await this.app.api.post(`/study-groups/${this.id}/assignments`, body);
    this.onAssignment({ action: id ? 'updated' : 'created', assignment: result.data });
    announce(id ? 'Assignment saved.' : 'Assignment added.');
  }

  // --- scrolling and reading ---

  #atBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.history.scrollTop = this.history.scrollHeight;
  }

  /** Move the read marker to the newest message when the person can see it. */
  #readToEnd() {
    const last = this.seqs.at(-1);
    if (last !== undefined && document.visibilityState === 'visible' && this.#atBottom()) {
      this.app.markRead(this.id, last);
    }
  }

  visible() {
    this.#readToEnd();
  }
}

/** Wire the room's static controls (composer, panels, forms) once; they act on `current()`. */
export function wireRoomControls(app, current) {
  const input = $('message-input');
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
  });
  input.addEventListener('input', () => {
    const room = current();
    if (room && input.value.trim()) app.client.typing(room.id);
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
  });
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const room = current();
    const body = input.value;
    if (!room || !body.trim()) return;
    app.send(room, body);
    input.value = '';
    input.style.height = '';
    input.focus();
  });
  $('older-button').addEventListener('click', () => current()?.loadOlder().catch((error) => app.report(error)));
  togglePanel('members-button', 'members-panel', 'assignments-button', () => current()?.renderMembers());
  togglePanel('assignments-button', 'assignments-panel', 'members-button', () => {
    current()?.loadAssignments().catch((error) => app.report(error));
  });
  onSubmit($('assignment-form'), async (fields, form) => {
    await current()?.saveAssignment(fields);
    resetAssignmentForm(form);
  });
  $('assignment-cancel').addEventListener('click', () => resetAssignmentForm($('assignment-form')));
}

function resetAssignmentForm(form) {
  form.reset();
  form.elements.id.value = '';
  $('assignment-form-title').textContent = 'New assignment';
  $('assignment-cancel').hidden = true;
}

/** A button that shows its panel (and hides the other one). */
function togglePanel(buttonId, panelId, otherButtonId, onOpen) {
  $(buttonId).addEventListener('click', () => {
    const panel = $(panelId);
    const open = panel.hidden;
    panel.hidden = !open;
    $(buttonId).setAttribute('aria-expanded', String(open));
    const other = $(otherButtonId);
    $(other.getAttribute('aria-controls')).hidden = true;
    other.setAttribute('aria-expanded', 'false');
    if (open) onOpen();
  });
}
