// The connection status pill (#status): its data-state mirrors the client's
// state, #rtt shows the last heartbeat round trip while connected. State changes
// (not every RTT update) are announced through a separate live region.

const LABELS = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

/**
 * @param {import('./client.js').TerminalWebSocketClient} client
 * @param {HTMLElement} element #status, holding .status-label and #rtt
 * @param {HTMLElement} announcer a role=status element for screen readers
 */
export function bindStatus(client, element, announcer) {
  const label = element.querySelector('.status-label');
  const rtt = element.querySelector('#rtt');
  const show = (state) => {
    if (element.dataset.state !== state && state !== 'connecting') announcer.textContent = LABELS[state];
    element.dataset.state = state;
    label.textContent = LABELS[state];
    if (state !== 'open') rtt.textContent = '';
    element.title = state === 'reconnecting' ? 'Connection lost; retrying with backoff' : LABELS[state];
  };
  show(client.state);
  client.on('state', show);
  client.on('rtt', (ms) => {
    rtt.textContent = `${Math.round(ms)} ms`;
  });
}
