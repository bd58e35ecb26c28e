// Small DOM helpers for the StudyBuddy web app. Text always goes in as text, never as HTML.

/** The element with this id (throws when the page lacks it: a bug, not a user problem). */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

/**
 * Create an element: h('button', {type: 'button', class: 'link', onclick}, 'Edit').
 * Attributes starting with `on` become listeners; `dataset` sets data-*; false/null are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'", '&#39;': "'" };

/**
 * The server stores user text HTML-escaped (contract: html.escape(quote=True)). Undo exactly
 * that escaping to show the text as typed; the result only ever goes into textContent.
 */
export function unescapeHtml(text) {
  return String(text ?? '').replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});

/** "14:05" today, "Mon 3 Jun, 14:05" otherwise. */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const today = new Date().toDateString() === date.toDateString();
  return today ? timeFormat.format(date) : dateTimeFormat.format(date);
}

/** A date-time for humans, always with the day. */
export function formatDateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : dateTimeFormat.format(date);
}

/** `datetime-local` input value (local time) for an ISO time, and back to ISO UTC. */
export function toLocalInput(iso) {
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function fromLocalInput(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = $('announcer');
  const line = h('p', {}, text);
  region.append(line);
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

/** Show an error on a form: its message in the form's alert, fields marked invalid. */
export function showFormError(form, error) {
  clearFormError(form);
  const alert = form.querySelector('.form-error');
  const fields = error?.fields ?? [];
  for (const problem of fields) {
    const input = form.elements.namedItem(problem.field);
    if (input instanceof HTMLElement) input.setAttribute('aria-invalid', 'true');
  }
  const detail = fields
    .filter((problem) => problem.message !== error.message)
    .map((problem) => `${problem.field}: ${problem.message}`).join('; ');
  if (alert) alert.textContent = detail ? `${error.message} (${detail})` : String(error?.message ?? error);
  const first = form.querySelector('[aria-invalid="true"]');
  if (first instanceof HTMLElement) first.focus();
}

export function clearFormError(form) {
  const alert = form.querySelector('.form-error');
  if (alert) alert.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** Run a form's submit handler with its button disabled and its errors shown. */
export function onSubmit(form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    clearFormError(form);
    try {
      await handler(new FormData(form), form);
    } catch (error) {
      showFormError(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** Open a <dialog> modally (focus moves into it; Escape closes it) and focus `focus`. */
export function openDialog(dialog, focus) {
  if (!dialog.open) dialog.showModal();
  if (focus) focus.focus();
}
