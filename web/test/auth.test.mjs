// src/auth.js without a browser: `?token=` leaving the address bar (the rest of the URL
// kept), and how the answers of api/me and api/login map to identities and messages.
// `location`, `history` and `fetch` are stand-ins.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError, allows, fetchIdentity, signIn, signOut, takeUrlToken } from '../src/auth.js';

/** Points `location`/`history` at `href`; returns the list of URLs `replaceState` was given. */
function useUrl(href) {
  const replaced = [];
  globalThis.location = { href };
  globalThis.history = {
    state: null,
    replaceState(_state, _title, url) {
      replaced.push(url);
      globalThis.location.href = url;
    },
  };
  return replaced;
}

/** Answers every `fetch` with `status` and `body`; returns the calls made. */
function useFetch(status, body) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url: String(url), init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  };
  return calls;
}

test('takeUrlToken removes only the token, and only when there is one', () => {
  let replaced = useUrl('http://gw.test/term/?a=1&token=secret&b=2#frag');
  assert.equal(takeUrlToken(), 'secret');
  assert.deepEqual(replaced, ['http://gw.test/term/?a=1&b=2#frag']);

  replaced = useUrl('http://gw.test/?token=abc');
  assert.equal(takeUrlToken(), 'abc');
  assert.deepEqual(replaced, ['http://gw.test/']);

  replaced = useUrl('http://gw.test/?tokens=1');
  assert.equal(takeUrlToken(), null);
  assert.deepEqual(replaced, [], 'no URL change without a token');

  replaced = useUrl('http://gw.test/?token=');
  assert.equal(takeUrlToken(), null, 'an empty token is no token');
  assert.deepEqual(replaced, ['http://gw.test/']);
});

test('api/me: auth off, a 404, signed in, signed out, and failures', async () => {
  useUrl('http://gw.test/term/');
  let calls = useFetch(200, { auth: false });
  assert.deepEqual(await fetchIdentity(), { auth: false });
  assert.equal(calls[0].url, 'http://gw.test/term/api/me', 'relative to the page');
  assert.equal(calls[0].init.cache, 'no-store');

  useFetch(404, undefined);
  assert.deepEqual(await fetchIdentity(), { auth: false }, 'a gateway without the endpoint');

  useFetch(200, { auth: true, user: 'alice', role: 'operator', expiresAt: 5 });
  assert.deepEqual(await fetchIdentity(), { auth: true, user: 'alice', role: 'operator', expiresAt: 5 });

  useFetch(401, { error: 'unauthorized', message: 'no token' });
  assert.equal(await fetchIdentity(), null);

  useFetch(500, { error: 'internal' });
  await assert.rejects(fetchIdentity(), (error) => error instanceof AuthError && error.status === 500);

  globalThis.fetch = async () => {
    throw new TypeError('network down');
  };
  await assert.rejects(fetchIdentity(), (error) => error instanceof AuthError && error.status === 0);
});

test('api/login sends JSON and turns refusals into sentences; api/logout', async () => {
  useUrl('http://gw.test/');
  let calls = useFetch(200, { user: 'bob', role: 'viewer', expiresAt: 9 });
  assert.deepEqual(await signIn({ username: 'bob', password: 'pw' }),
    { auth: true, user: 'bob', role: 'viewer', expiresAt: 9 });
  assert.equal(calls[0].init.method, 'POST');
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(calls[0].init.body), { username: 'bob', password: 'pw' });
  assert.equal(calls[0].init.credentials, 'same-origin');

  useFetch(401, { error: 'unauthorized', message: 'invalid user name or password' });
  await assert.rejects(signIn({ username: 'bob', password: 'no' }),
    { name: 'AuthError', status: 401, message: 'Invalid user name or password.' });

  useFetch(415, undefined);
  await assert.rejects(signIn({ token: 't' }), { status: 415, message: 'The gateway answered 415.' });

  calls = useFetch(204, undefined);
  await signOut();
  assert.equal(calls[0].url, 'http://gw.test/api/logout');
  assert.equal(calls[0].init.method, 'POST');
});

test('allows follows the role\'s permissions, and says yes when they are unknown', async () => {
  useFetch(200, { user: 'vera', role: 'viewer', expiresAt: 3, permissions: ['session.list.own'] });
  const vera = await fetchIdentity();
  assert.deepEqual(vera.permissions, ['session.list.own']);
  assert.equal(allows(vera, 'session.create'), false);
  assert.equal(allows(vera, 'session.list.own'), true);
  assert.equal(allows({ auth: true, user: 'old', role: 'operator' }, 'session.create'), true, 'an older gateway');
  assert.equal(allows({ auth: false }, 'session.create'), true, 'authentication off');
  assert.equal(allows(null, 'session.create'), true);
});
