// The gateway under test: `tmuxgate start` on 127.0.0.1 with free ports, its own tmux
// sockets and DATA_DIR, authentication off unless asked for (then with users added
// through `tmuxgate user add`), stopped with its tmux servers even when a test forgot.
// A fleet's gateways share one socket directory (`sharedSocketDir`): its tmux servers
// outlive each gateway and are killed when the directory is removed.

import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (web/test/ is two levels below it). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** How long the gateway may take to print its listening line. */
const GATEWAY_START_TIMEOUT_MS = 20_000;
/** How long the gateway may take to exit after SIGTERM before it is killed. */
const GATEWAY_STOP_TIMEOUT_MS = 10_000;
/** How long `tmux kill-server` may take (it can hang on a server whose clients are gone). */
const KILL_SERVER_TIMEOUT_MS = 3_000;

/** Gateways still running in this process: stopped by the exit hook if a test forgot. */
const running = new Set();
/** Shared socket directories not yet removed: cleaned up by the exit hook too. */
const sharedDirs = new Set();

/**
 * Starts `tmuxgate start` on 127.0.0.1 with free ports, a private tmux socket directory and
 * a private DATA_DIR; resolves once it logged `tmuxgate listening`. Authentication is off
 * (`ENABLE_AUTH=false`) unless `auth` is given: then it is on, and `auth.users` (`{name,
 * role, password}`) are added first with `tmuxgate user add`. `env` adds to (or replaces)
 * the variables; `null` removes one (`DEFAULT_COMMAND: null`: sessions run the gateway's
 * integrated bash, which command execution needs). `socketDir` (from `sharedSocketDir`)
 * replaces the private socket directory: the gateway then finds the tmux servers already
 * there, and `stop()` leaves them running for the others sharing it.
 * @param {{bin?: string, env?: Record<string,string|null>, auth?: {users: {name: string, role: string, password: string}[]}, socketDir?: string}} [options]
 */
export async function startGateway({ bin, env = {}, auth, socketDir: sharedSocketPath } = {}) {
  bin ??= process.env.TMUXGATE_BIN || path.join(REPO, 'target/debug/tmuxgate');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-e2e-'));
  const socketDir = sharedSocketPath ?? path.join(dir, 'tmux');
  const childEnv = {
    ...process.env,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    HEALTH_PORT: '0',
    TMUX_SOCKET_PATH: socketDir,
    DATA_DIR: path.join(dir, 'state'),
    ENABLE_AUTH: auth ? 'true' : 'false',
    DEFAULT_COMMAND: 'exec bash --norc --noprofile',
    LOG_FORMAT: 'json',
    RUST_LOG: 'warn,tmuxgate::cli=info',
    ...env,
  };
  delete childEnv.TMUX;
  delete childEnv.TMUX_PANE;
  for (const [name, value] of Object.entries(env)) {
    if (value === null) delete childEnv[name];
  }
  try {
    for (const user of auth?.users ?? []) addUser(bin, childEnv, user);
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const child = spawn(bin, ['start'], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const gateway = new Gateway(child, dir, sharedSocketPath ? null : socketDir);
  gateway.env = childEnv;
  gateway.bin = bin;
  running.add(gateway);
  try {
    gateway.addr = await gateway.listening();
  } catch (error) {
    await gateway.stop();
    throw error;
  }
  return gateway;
}

/**
 * A tmux socket directory for several gateways (a fleet): pass `path` as `startGateway`'s
 * `socketDir`. `remove()` kills its tmux servers and deletes it (after the gateways
 * stopped); the exit hook does it if a test forgot.
 * @returns {{path: string, remove: () => Promise<void>}}
 */
export function sharedSocketDir() {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-fleet-'));
  const shared = {
    path: path.join(parent, 'tmux'),
    async remove() {
      if (!sharedDirs.delete(shared)) return;
      await killTmux(shared.path);
      fs.rmSync(parent, { recursive: true, force: true });
    },
    removeNow() {
      killTmuxNow(shared.path);
      fs.rmSync(parent, { recursive: true, force: true });
    },
  };
  sharedDirs.add(shared);
  return shared;
}

/** `tmuxgate user add NAME --role ROLE --password-stdin` with the gateway's settings. */
function addUser(bin, env, { name, role, password }) {
  const result = spawnSync(bin, ['user', 'add', name, '--role', role, '--password-stdin'], {
    env, input: `${password}\n`, encoding: 'utf8', timeout: GATEWAY_START_TIMEOUT_MS,
  });
  if (result.status !== 0) {
    throw new Error(`tmuxgate user add ${name} failed (${result.status ?? result.error}):\n${result.stderr}`);
  }
}

class Gateway {
  /** `socketDir`: the private socket directory whose tmux servers `stop()` kills; null when shared. */
  constructor(child, dir, socketDir) {
    this.child = child;
    this.dir = dir;
    this.socketDir = socketDir;
    /** Every stderr line, for diagnostics. */
    this.logLines = [];
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.spawnError = new Promise((resolve) => child.once('error', resolve));
    this.lines = createInterface({ input: child.stderr });
    this.lines.on('line', (line) => this.logLines.push(line));
  }

  /** `http://127.0.0.1:PORT` */
  get url() { return `http://${this.addr}`; }

  /**
   * Runs `tmuxgate ARGS` with the gateway's settings (DATA_DIR…), e.g. `['user', 'token',
   * 'alice']`; resolves with its stdout, rejects when it fails.
   */
  cli(args) {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`tmuxgate ${args.join(' ')}: exit ${code}\n${stderr}`))));
    });
  }

  /** The log so far, one line per entry. */
  log() { return this.logLines.join('\n'); }

  /** The proxy address from the listening line; rejects on exit, spawn error or timeout. */
  listening() {
    return new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        reject(new Error(`tmuxgate did not start: ${why}\n--- gateway log ---\n${this.log()}`));
      };
      const timer = setTimeout(() => fail(`no listening line in ${GATEWAY_START_TIMEOUT_MS} ms`),
        GATEWAY_START_TIMEOUT_MS);
      this.lines.on('line', (line) => {
        const addr = listeningAddress(line);
        if (addr) {
          clearTimeout(timer);
          resolve(addr);
        }
      });
      this.exited.then(({ code, signal }) => fail(`exited (code ${code}, signal ${signal})`));
      this.spawnError.then((error) => fail(`spawn failed: ${error.message}`));
    });
  }

  /**
   * SIGTERM, wait for the exit, kill its tmux servers (unless the socket directory is
   * shared), remove the directory. Idempotent; also after `kill()`.
   */
  async stop() {
    if (!running.delete(this)) return;
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), GATEWAY_STOP_TIMEOUT_MS);
      await Promise.race([this.exited, this.spawnError]);
      clearTimeout(timer);
    }
    if (this.socketDir) await killTmux(this.socketDir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGKILL (a crash: nothing is shut down cleanly); resolves once it exited. */
  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The synchronous last resort of the exit hook. */
  stopNow() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    if (this.socketDir) killTmuxNow(this.socketDir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Kills the tmux servers of `socketDir`: `kill-server`, then SIGKILL for the stragglers. */
async function killTmux(socketDir) {
  await Promise.all(tmuxSockets(socketDir).map(killServer));
  killStragglers(socketDir);
}

/** `killTmux`, synchronously (for the exit hook). */
function killTmuxNow(socketDir) {
  for (const socket of tmuxSockets(socketDir)) {
    spawnSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore', timeout: KILL_SERVER_TIMEOUT_MS });
  }
  killStragglers(socketDir);
}

/** `fields.proxy` of a JSON `tmuxgate listening` log line, else null. */
function listeningAddress(line) {
  try {
    const entry = JSON.parse(line);
    return entry?.fields?.message === 'tmuxgate listening' ? entry.fields.proxy : null;
  } catch {
    return null;
  }
}

function tmuxSockets(socketDir) {
  let entries;
  try {
    entries = fs.readdirSync(socketDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isSocket()).map((e) => path.join(socketDir, e.name));
}

function killServer(socket) {
  return new Promise((resolve) => {
    const kill = spawn('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    const timer = setTimeout(() => kill.kill('SIGKILL'), KILL_SERVER_TIMEOUT_MS);
    kill.once('exit', () => { clearTimeout(timer); resolve(); });
    kill.once('error', () => { clearTimeout(timer); resolve(); });
  });
}

/**
 * SIGKILLs the tmux servers that survived `kill-server` (it hangs on tmux 3.3a while a control
 * client is unread): processes whose command line names our private socket directory.
 */
function killStragglers(socketDir) {
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes(socketDir)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

process.on('exit', () => {
  for (const gateway of running) gateway.stopNow();
  for (const shared of sharedDirs) shared.removeNow();
});
