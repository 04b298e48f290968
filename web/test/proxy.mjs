// A TCP proxy in front of the gateway that can cut every connection at once, as a
// network failure would, and refuse new ones for a while (an outage).

import net from 'node:net';

/**
 * A TCP proxy in front of `target` (`host:port`). `dropAll()` destroys every proxied
 * connection on both sides at once, as a network failure would; `block()` refuses new
 * connections (an outage) until `unblock()`.
 */
export async function startProxy(target) {
  const [host, port] = splitAddr(target);
  const pairs = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.resetAndDestroy?.() ?? client.destroy();
      return;
    }
    const upstream = net.connect({ host, port });
    const pair = { client, upstream };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: ownPort } = server.address();
  return {
    addr: `127.0.0.1:${ownPort}`,
    url: `http://127.0.0.1:${ownPort}`,
    /** Destroys every open connection; returns how many there were. */
    dropAll() {
      const count = pairs.size;
      for (const { client, upstream } of [...pairs]) {
        client.resetAndDestroy?.() ?? client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      return count;
    },
    /** Cuts every connection and refuses new ones until `unblock()`; returns how many were cut. */
    block() {
      blocked = true;
      return this.dropAll();
    },
    unblock() {
      blocked = false;
    },
    async close() {
      this.dropAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function splitAddr(addr) {
  const colon = addr.lastIndexOf(':');
  return [addr.slice(0, colon), Number(addr.slice(colon + 1))];
}
