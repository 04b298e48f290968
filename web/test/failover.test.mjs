// Failover in a fleet: two gateways share one Redis and one tmux socket directory, and list
// each other in FLEET_URLS. The page is served by A; when A is killed with SIGKILL the page
// continues on B by itself: it re-attaches its terminal (a snapshot: B keeps another log of
// the pane), which still shows what was typed through A, and typing goes on through B.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  createSession, launchBrowser, openUi, terminalText, typeLine, uniqueName, WAIT_TIMEOUT_MS,
  waitForText, waitForViewState, watchAttaches,
} from './harness.mjs';
import { sharedSocketDir, startGateway } from './gateway.mjs';

/** How long redis-server may take to accept connections. */
const REDIS_START_TIMEOUT_MS = 10_000;

const fleet = {};

before(async () => {
  requireRedisServer();
  const [redisPort, portA, portB] = await freePorts(3);
  fleet.redis = await startRedis(redisPort);
  fleet.sockets = sharedSocketDir();
  const wsUrl = (port) => `ws://127.0.0.1:${port}/ws`;
  const env = (port, peer) => ({
    PROXY_PORT: String(port),
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_PREFIX: `e2e${process.pid}`,
    FLEET_URLS: `${wsUrl(portA)},${wsUrl(portB)}`,
    // Each gateway accepts the page the other one served.
    ALLOWED_ORIGINS: `http://127.0.0.1:${peer}`,
  });
  fleet.browser = await launchBrowser();
  // One after the other: the second finds the tmux servers the first started.
  fleet.a = await startGateway({ env: env(portA, portB), socketDir: fleet.sockets.path });
  fleet.b = await startGateway({ env: env(portB, portA), socketDir: fleet.sockets.path });
});

after(async () => {
  await fleet.browser?.close();
  await fleet.b?.stop();
  await fleet.a?.stop();
  await fleet.sockets?.remove();
  await fleet.redis?.stop();
});

test('the gateway dies: the page continues on the next one of the fleet, screen intact', async (t) => {
  const { a, b } = fleet;
  const urlOf = (gateway) => `ws://${gateway.addr}/ws`;
  let attaches;
  const socketUrls = [];
  const page = await openUi(fleet.browser, `${a.url}/`, {
    beforeLoad: (p) => {
      attaches = watchAttaches(p);
      p.on('websocket', (ws) => socketUrls.push(ws.url()));
    },
  });
  assert.equal(await page.evaluate(() => window.tmuxgate.client.url), urlOf(a), 'the page starts on its own gateway');
  const sessionId = await createSession(page, uniqueName('failover'));
  await typeLine(page, sessionId, 'echo before-$((6*7))');
  await waitForText(page, sessionId, /^before-42$/m);

  await a.kill();
  t.diagnostic(`killed A (${a.addr}); B is ${b.addr}`);
  try {
    await page.waitForFunction((url) => window.tmuxgate.client.url === url && window.tmuxgate.client.state === 'open',
      urlOf(b), { timeout: WAIT_TIMEOUT_MS });
  } catch (error) {
    const client = await page.evaluate(() => ({ url: window.tmuxgate.client.url, state: window.tmuxgate.client.state }));
    error.message += `\nclient: ${JSON.stringify(client)}; sockets: ${socketUrls.join(', ')}` +
      `\n--- page problems ---\n${page.problems.join('\n')}\n--- B's log ---\n${b.log().split('\n').slice(-20).join('\n')}`;
    throw error;
  }
  await waitForViewState(page, sessionId, 'live');
  assert.match(await terminalText(page, sessionId), /^before-42$/m, 'what was typed through A still shows');
  await typeLine(page, sessionId, 'echo after-$((5+5))');
  const text = await waitForText(page, sessionId, /^after-10$/m);
  assert.match(text, /^before-42$/m);

  // After the drop the client tries A once more (a gateway that is still there resumes
  // exactly), is refused, and moves on to B.
  assert.deepEqual(socketUrls, [urlOf(a), urlOf(a), urlOf(b)], 'A, A again (refused), then B');
  assert.deepEqual(attaches.map((sent) => sent.length), [1, 0, 1], 'an attach on A, none on the refused retry, one on B');
  const [[first], , [again]] = attaches;
  assert.equal(typeof first.response?.data?.logId, 'string', 'A names its log');
  assert.equal(again.request.data.resumeFrom > 0, true, `the re-attach on B resumes: ${JSON.stringify(again.request)}`);
  assert.equal(again.request.data.resumeLogId, first.response.data.logId, 'with the log the offset belongs to');
  assert.equal(again.request.data.target, first.response.data.pane, 'on the same pane');
  assert.equal(again.response?.success, true);
  assert.equal(again.response.data.snapshot, true, 'B keeps another log: a snapshot, then the stream');
  assert.deepEqual(page.problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p)), []);
  await page.context().close();
});

/** Fails (never skips) when redis-server is not installed. */
function requireRedisServer() {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('redis-server is needed for the fleet test: apt-get install redis-server ' +
      `(scripts/test installs it when run as root): ${probe.error?.message ?? probe.stderr}`);
  }
}

/** `count` distinct free loopback ports: listened on at once (port 0), then closed. */
async function freePorts(count) {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** `redis-server` on 127.0.0.1:`port`, nothing persisted; resolves once it accepts connections. */
async function startRedis(port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-redis-'));
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killNow = () => child.kill('SIGKILL');
  process.on('exit', killNow);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const redis = {
    async stop() {
      process.off('exit', killNow);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  let output = '';
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server not ready in ${REDIS_START_TIMEOUT_MS} ms`)),
        REDIS_START_TIMEOUT_MS);
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.on('data', (chunk) => { output += chunk; });
      child.once('error', (error) => { clearTimeout(timer); reject(error); });
      exited.then((code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code})`)); });
    });
  } catch (error) {
    await redis.stop();
    error.message = `${error.message}\n--- redis-server output ---\n${output}`;
    throw error;
  }
  return redis;
}
