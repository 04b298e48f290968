// Sharing a session between two users (two browser contexts, two cookies): alice
// (operator) shares her session read-only with bob (viewer) through the share dialog, bob
// finds it in his list under alice's name and watches it read-only, and when alice takes
// the share back bob's terminal ends (`revoked`) and the session leaves his list.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  createSession, openFromList, typeLine, uniqueName, useGatewayAndBrowser, view, WAIT_TIMEOUT_MS,
  waitForText, waitForViewState,
} from './harness.mjs';
import { openSignedIn, unexpectedProblems } from './auth.mjs';

const password = (name) => `${name}-${randomBytes(9).toString('hex')}`;
const ALICE = { name: 'alice', role: 'operator', password: password('alice') };
const BOB = { name: 'bob', role: 'viewer', password: password('bob') };

const fixture = useGatewayAndBrowser({ gateway: { auth: { users: [ALICE, BOB] } } });

/** Opens the share dialog of the session named `name` from the list. */
async function openShareDialog(page, name) {
  await page.locator(`#sessions li[data-session-name="${name}"] button.share`).click();
  const dialog = page.locator('dialog#share-dialog');
  await dialog.waitFor({ state: 'visible', timeout: WAIT_TIMEOUT_MS });
  return dialog;
}

/** Clicks #refresh until the list has (or lacks) the session named `name`. */
async function waitForListed(page, name, listed) {
  const entry = page.locator(`#sessions li[data-session-name="${name}"]`);
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while ((await entry.count() > 0) !== listed) {
    if (Date.now() > deadline) throw new Error(`${name} never ${listed ? 'appeared in' : 'left'} the list`);
    await page.locator('#refresh').click();
    await page.waitForTimeout(100);
  }
}

test('alice shares a session read-only with bob, then takes it back', async () => {
  const alice = await openSignedIn(fixture.browser, `${fixture.gateway.url}/`, ALICE);
  const bob = await openSignedIn(fixture.browser, `${fixture.gateway.url}/`, BOB);
  const name = uniqueName('shared');
  const sessionId = await createSession(alice, name);
  const own = alice.locator(`#sessions li[data-session-name="${name}"]`);
  assert.equal(await own.locator('.owner').isVisible(), false, 'no owner shown on her own session');
  await waitForListed(bob, name, false);

  // Shared for writing first, then changed to read: one share, the last mode.
  let dialog = await openShareDialog(alice, name);
  for (const mode of ['write', 'read']) {
    await dialog.locator('input[name="user"]').fill(BOB.name);
    await dialog.locator('select[name="mode"]').selectOption(mode);
    await dialog.locator('form [type="submit"]').click();
    await dialog.locator(`li[data-user="bob"][data-mode="${mode}"]`).waitFor({ timeout: WAIT_TIMEOUT_MS });
  }
  assert.equal(await dialog.locator('li[data-user]').count(), 1);
  assert.match(await dialog.locator('li[data-user="bob"]').textContent(), /view/);
  await dialog.locator('.share-close').click();
  await dialog.waitFor({ state: 'hidden', timeout: WAIT_TIMEOUT_MS });

  await waitForListed(bob, name, true);
  const entry = bob.locator(`#sessions li[data-session-name="${name}"]`);
  assert.equal((await entry.locator('.owner').textContent()).trim(), 'alice');
  assert.equal(await entry.locator('button.share').isVisible(), false, 'bob cannot share it on');
  assert.equal(await openFromList(bob, name, { readonly: true }), sessionId);
  assert.ok(await view(bob, sessionId).locator('.badge-readonly').isVisible(), 'read-only badge');
  await typeLine(alice, sessionId, 'echo shared-$((6*7))');
  await waitForText(bob, sessionId, /^shared-42$/m);

  dialog = await openShareDialog(alice, name);
  await dialog.locator('li[data-user="bob"] button.unshare').click();
  await dialog.locator('li[data-user="bob"]').waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  await dialog.locator('.share-close').click();

  await waitForViewState(bob, sessionId, 'closed');
  assert.match(await view(bob, sessionId).textContent(), /revoked/i);
  await waitForListed(bob, name, false);
  assert.deepEqual(unexpectedProblems(alice), []);
  assert.deepEqual(unexpectedProblems(bob), []);
  await alice.context().close();
  await bob.context().close();
});

test('a viewer is not offered session creation, and sharing with nobody is an error', async () => {
  const bob = await openSignedIn(fixture.browser, `${fixture.gateway.url}/`, BOB);
  // The form hides once the first list is drawn with bob's permissions (viewer: no create).
  await bob.locator('form#create-session').waitFor({ state: 'hidden', timeout: WAIT_TIMEOUT_MS });

  const alice = await openSignedIn(fixture.browser, `${fixture.gateway.url}/`, ALICE);
  const name = uniqueName('lonely');
  await createSession(alice, name, { prompt: false });
  const dialog = await openShareDialog(alice, name);
  await dialog.locator('input[name="user"]').fill('nobody');
  await dialog.locator('form [type="submit"]').click();
  await alice.locator('#toasts .toast-error').waitFor({ timeout: WAIT_TIMEOUT_MS });
  await dialog.locator('.share-error').waitFor({ state: 'visible', timeout: WAIT_TIMEOUT_MS });
  assert.equal(await dialog.locator('li[data-user]').count(), 0);
  await alice.context().close();
  await bob.context().close();
});
