// The connection status pill (#status): its data-state mirrors the client's
// state, #rtt shows the last heartbeat round trip while connected. State changes
// (not every RTT update) are announced through a separate live region. `closed`
// after the gateway refused the credentials (close 4401) reads "Signed out".

const LABELS = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};
const SIGNED_OUT = 'Signed out';

/**
 * @param {import('./client.js').TerminalWebSocketClient} client
 * @param {HTMLElement} element #status, holding .status-label and #rtt
 * @param {HTMLElement} announcer a role=status element for screen readers
 */
export function bindStatus(client, element, announcer) {
  const label = element.querySelector('.status-label');
  const rtt = element.querySelector('#rtt');
  let signedOut = false;
  const show = (state) => {
    if (state !== 'closed') signedOut = false;
    const text = signedOut ? SIGNED_OUT : LABELS[state];
    if (label.textContent !== text && state !== 'connecting') announcer.textContent = text;
    element.dataset.state = state;
    label.textContent = text;
    if (state !== 'open') rtt.textContent = '';
    element.title = state === 'reconnecting' ? 'Connection lost; retrying with backoff' : text;
  };
  show(client.state);
  client.on('state', show);
  client.on('unauthorized', () => {
    signedOut = true;
    show(client.state);
  });
  client.on('rtt', (ms) => {
    rtt.textContent = `${Math.round(ms)} ms`;
  });
}
