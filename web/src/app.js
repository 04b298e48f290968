// The tmuxgate browser UI: a sessions panel, terminals in tabs over one
// WebSocket, and a connection status pill. Built on client.js. With
// authentication, account.js decides between the login page and the workspace;
// the WebSocket carries the sign-in cookie by itself, so no token is ever handed
// to the client or put in a URL. Given a fleet (`api/fleet`), the client moves on
// to the fleet's next gateway when this one drops.
//
// `window.tmuxgate` is a stable hook for tests and the curious:
// `{ client, terminals(), identity() }`, see `describeView` for the terminal fields.

import '@xterm/xterm/css/xterm.css';
import './app.css';
import './auth.css';
import { Account } from './account.js';
import { takeUrlToken } from './auth.js';
import { pageWebSocketUrl, TerminalWebSocketClient } from './client.js';
import { LEAVE_SHORTCUT } from './keys.js';
import { SessionPanel } from './session-panel.js';
import { ShareDialog } from './share-dialog.js';
import { bindStatus } from './status.js';
import { createNotifier } from './toasts.js';
import { Workspace } from './workspace.js';

/** Events after which the session list (sizes, viewer counts, membership) is stale. */
const LIST_EVENTS = ['session-closed', 'session-resized', 'backend-lost', 'viewer-joined', 'viewer-left'];
/** How long start-up waits for `api/fleet` before going on with this gateway alone. */
const FLEET_TIMEOUT_MS = 3_000;
const narrowQuery = matchMedia('(max-width: 720px)');
const $ = (selector) => document.querySelector(selector);

/** The panel is a column on wide screens (collapsible) and a drawer on narrow ones. */
function createLayout() {
  const app = $('#app');
  const toggle = $('#panel-toggle');
  const scrim = $('#scrim');
  const isShown = () =>
    narrowQuery.matches ? app.classList.contains('drawer-open') : !app.classList.contains('panel-collapsed');
  const sync = () => {
    toggle.setAttribute('aria-expanded', String(isShown()));
    scrim.hidden = !(narrowQuery.matches && isShown());
  };
  const setShown = (shown) => {
    if (narrowQuery.matches) app.classList.toggle('drawer-open', shown);
    else app.classList.toggle('panel-collapsed', !shown);
    sync();
  };
  toggle.addEventListener('click', () => {
    setShown(!isShown());
    if (isShown()) $('#panel').querySelector('input, button')?.focus();
  });
  scrim.addEventListener('click', () => setShown(false));
  $('#panel').addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && narrowQuery.matches && isShown()) {
      setShown(false);
      toggle.focus();
    }
  });
  narrowQuery.addEventListener('change', sync);
  sync();
  return {
    showPanel: () => setShown(true),
    closeDrawer: () => narrowQuery.matches && setShown(false),
  };
}

/** A terminal as `window.tmuxgate.terminals()` reports it. */
function describeView(view) {
  const attachment = view.attachment;
  return {
    sessionId: view.sessionId,
    name: view.name,
    channel: attachment?.channel ?? null,
    pane: attachment?.pane ?? null,
    mode: view.mode,
    state: view.state,
    offset: attachment?.offset ?? null,
    term: view.term,
    text: () => view.text(),
  };
}

/**
 * The gateways to connect to, this page's own first, then the others of its fleet
 * (`api/fleet`) in their order; null (this gateway alone) without a fleet, or when the
 * gateway does not answer (an older one: 404).
 */
async function fleetUrls() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), FLEET_TIMEOUT_MS);
  try {
    const response = await fetch(new URL('api/fleet', location.href), {
      credentials: 'same-origin', redirect: 'error', signal: abort.signal,
    });
    const listed = response.ok ? (await response.json())?.urls : null;
    if (!Array.isArray(listed) || listed.length < 2) return null;
    const urls = new Set([pageWebSocketUrl()]);
    for (const url of listed) {
      try {
        urls.add(new URL(url).href); // one spelling per gateway, to drop the duplicates
      } catch {
        // not a URL: skipped
      }
    }
    return urls.size > 1 ? [...urls] : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The sessions panel and the terminals, wired to each other and to the share dialog. */
function createWorkspace({ client, notify, layout, identity }) {
  let panel = null;
  const workspace = new Workspace({
    client,
    tabList: $('#tabs'),
    viewContainer: $('#views'),
    welcome: $('#welcome'),
    onChange: () => {
      panel?.markOpen();
      panel?.scheduleRefresh(); // viewer counts and sizes changed with it
      document.title = workspace.active ? `${workspace.active.name} · tmuxgate` : 'tmuxgate';
    },
    onLeave: () => {
      layout.showPanel();
      panel.focus(workspace.active?.sessionId);
    },
  });
  const shareDialog = new ShareDialog({ dialog: $('#share-dialog'), client, notify, onChange: () => panel.refresh() });
  panel = new SessionPanel({
    client,
    root: $('#panel'),
    openMode: (sessionId) => workspace.find(sessionId)?.mode ?? null,
    activeId: () => workspace.active?.sessionId ?? null,
    notify,
    identity,
    onOpen: (session, mode) => {
      layout.closeDrawer();
      workspace.open(session, mode);
    },
    onShare: (session) => shareDialog.open(session),
    onList: (sessions) => {
      shareDialog.sync(sessions);
      for (const session of sessions) {
        const view = workspace.find(session.sessionId);
        if (view?.state === 'live') view.setViewers(session.viewers);
      }
    },
  });
  return { workspace, panel, shareDialog };
}

/** The login page and the workspace: entering connects, leaving forgets everything shown. */
function createAccount({ client, workspace, panel, shareDialog }) {
  return new Account({
    loginRoot: $('#login-page'),
    badge: $('#account'),
    onEnter: () => {
      $('#app').hidden = false;
      document.title = 'tmuxgate';
      client.connect().catch(() => {}); // only rejects on close(); the status pill shows progress
    },
    onLeave: () => {
      shareDialog.close();
      client.close();
      workspace.closeAll();
      panel.clear();
      $('#app').hidden = true;
    },
  });
}

async function main() {
  // First of all, before any request: a `?token=` leaves the address bar (and the history).
  const urlToken = takeUrlToken();
  const urls = await fleetUrls();
  const client = new TerminalWebSocketClient(urls ? { urls } : {});
  const notify = createNotifier($('#toasts'));
  const layout = createLayout();
  let account = null;
  const parts = createWorkspace({ client, notify, layout, identity: () => account?.identity });
  const { workspace, panel } = parts;
  account = createAccount({ client, ...parts });
  $('#welcome-new').addEventListener('click', () => {
    layout.showPanel();
    $('#create-session input[name="name"]').focus();
  });
  for (const element of document.querySelectorAll('[data-leave-shortcut]')) element.textContent = LEAVE_SHORTCUT;

  client.on('state', (state) => state === 'open' && panel.refresh());
  for (const event of LIST_EVENTS) client.on(event, () => panel.scheduleRefresh());
  client.on('input-refused', () => notify('This terminal is read-only: the input was not sent.', 'error'));
  client.on('unauthorized', ({ reason }) => {
    if (!account.unauthorized(reason)) notify('Signed out: the gateway no longer accepts this page’s credentials. Reload to sign in again.', 'error');
  });
  window.addEventListener('online', () => client.reconnectNow());
  // Ctrl+W closes the page in Chrome before any terminal sees the key: ask first.
  window.addEventListener('beforeunload', (event) => {
    if (!workspace.hasLiveTerminals) return;
    event.preventDefault();
    event.returnValue = ''; // older browsers ask only when this is set
  });

  window.tmuxgate = { client, terminals: () => workspace.views.map(describeView), identity: () => account.identity };
  panel.startPolling();
  bindStatus(client, $('#status'), $('#status-announce'));
  await account.start(urlToken);
}

main();
