// REST client of the web app. The access token lives in memory only; the refresh token is an
// HttpOnly cookie the page never sees. POST /auth/refresh, with the readable csrf_token cookie
// echoed as X-CSRF-Token, gives a new access token (on load, on expiry, after a 401).

import { decodeJwt } from '/sdk/studybuddy.js';

const BASE = '/api/v1';
/**
 * Calls of this page running at once. The server runs at most 10 calls of a user at a time
 * per node (more are 429), and over HTTP/2 a page could start dozens together.
 */
const MAX_RUNNING = 6;
/** A GET refused 429 with a Retry-After up to this is tried once more after it. */
const RETRY_AFTER_MAX_S = 5;

/** A REST error in the contract's envelope: `code`, `message`, `fields`, `status`, `retryAfter`. */
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const error = body?.error ?? {};
    super(error.message ?? `The server answered ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code ?? `HTTP_${status}`;
    this.details = error.details ?? {};
    this.retryAfter = retryAfter;
    if (status === 429 && retryAfter !== null) this.message = `Too many attempts: try again in ${retryAfter} s.`;
  }

  get fields() {
    return Array.isArray(this.details.fields) ? this.details.fields : [];
  }
}

/** The readable CSRF cookie set beside the refresh cookie; empty when signed out. */
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrf_token=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : '';
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export class Api {
  #token = null;
  #refreshing = null;
  #running = 0;
  #waiting = [];
  /** The signed-in user (own view), or null. */
  user = null;
  /** Called when the session is gone (refresh refused): show the sign-in page. */
  onSignedOut = () => {};

  get signedIn() {
    return this.#token !== null;
  }

  #setSession(data) {
    this.#token = data.access_token;
    this.user = data.user;
  }

  /** Whether a refresh cookie may exist (its CSRF twin is readable). */
  hasSessionCookie() {
    return csrfToken() !== '';
  }

  /** A new access token from the refresh cookie; one request at a time, across tabs too. */
  refresh() {
    if (!this.#refreshing) {
      this.#refreshing = this.#refreshOnce().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  async #refreshOnce() {
    // Refresh tokens rotate, and a reused one revokes the family: tabs take turns (Web Locks),
    // so each sends the cookie the previous one received.
    const run = async () => {
      const response = await fetch(`${BASE}/auth/refresh`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrfToken() },
      });
      const body = await readBody(response);
      if (!response.ok) {
        const error = new ApiError(response.status, body, retryAfter(response));
        if (response.status === 401 || response.status === 403) this.#signedOut();
        throw error;
      }
      this.#setSession(body.data);
      return this.#token;
    };
    return navigator.locks ? navigator.locks.request('studybuddy-refresh', run) : run();
  }

  #signedOut() {
    const wasSignedIn = this.#token !== null;
    this.#token = null;
    this.user = null;
    if (wasSignedIn) this.onSignedOut();
  }

  /** For the socket SDK: the current token, or a new one when forced or about to expire. */
  async token({ force = false } = {}) {
    if (!force && this.#token && !expiresSoon(this.#token)) return this.#token;
    return this.refresh();
  }

  async login(email, password, totpCode) {
    const body = { email, password };
    if (totpCode) body.totp_code = totpCode;
    const result = await this.request('POST', '/auth/login', { body, auth: false });
    this.#setSession(result.data);
    return result.data.user;
  }

  async register(fields) {
    return (await this.request('POST', '/auth/register', { body: fields, auth: false })).data;
  }

  async logout() {
    try {
      await this.request('POST', '/auth/logout', { headers: { 'X-CSRF-Token': csrfToken() }, retry: false });
    } finally {
      this.#token = null;
      this.user = null;
    }
  }

  /**
   * A REST call; resolves with the whole envelope ({data, pagination}) or null (204).
   * A 401 with a token refreshes it once and tries again; a GET refused 429 with a
   * Retry-After of at most 5 s is tried once more after it. At most 6 calls run at once.
   */
  async request(method, path, options = {}) {
    if (this.#running >= MAX_RUNNING) await new Promise((resolve) => this.#waiting.push(resolve));
    else this.#running += 1;
    try {
      return await this.#call(method, path, options);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the place passes on
      else this.#running -= 1;
    }
  }

  async #call(method, path, { body, params, auth = true, retry = true, headers = {} } = {}) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (auth) {
      if (!this.#token) await this.refresh();
      else if (expiresSoon(this.#token)) await this.refresh().catch(() => {});
      init.headers.Authorization = `Bearer ${this.#token}`;
    }
    const response = await fetch(`${BASE}${path}${query(params)}`, init);
    const payload = await readBody(response);
    if (response.ok) return payload;
    if (response.status === 401 && auth && retry && payload?.error?.code === 'UNAUTHORIZED') {
      await this.refresh();
      return this.#call(method, path, { body, params, auth, retry: false, headers });
    }
    const wait = retryAfter(response);
    if (response.status === 429 && method === 'GET' && retry && wait !== null && wait <= RETRY_AFTER_MAX_S) {
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      return this.#call(method, path, { body, params, auth, retry: false, headers });
    }
    throw new ApiError(response.status, payload, retryAfter(response));
  }

  get(path, params) {
    return this.request('GET', path, { params });
  }

  post(path, body) {
    return this.request('POST', path, { body });
  }

  patch(path, body) {
    return this.request('PATCH', path, { body });
  }

  put(path, body) {
    return this.request('PUT', path, { body });
  }

  delete(path, body) {
    return this.request('DELETE', path, { body });
  }
}

function retryAfter(response) {
  const value = Number(response.headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? value : null;
}

/** True when the token expires within 30 s (or cannot be read). */
function expiresSoon(token) {
  const exp = decodeJwt(token)?.exp;
  return typeof exp !== 'number' || exp * 1000 - Date.now() < 30_000;
}
