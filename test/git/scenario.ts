// Real git repositories for tests: a bare "upstream" served by the capture server, and a
// working clone ("the agent") that pushes to it over plain HTTP on 127.0.0.1.
import { mkdtemp, mkdir, rm, writeFile, chmod, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from '../../main/git/git-cli';
import { startCaptureServer, type CaptureServer, type CapturedPost } from './capture-server';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `airlock-git-${prefix}-`));
}

export function isolatedEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Agent Smith',
    GIT_AUTHOR_EMAIL: 'agent@example.test',
    GIT_COMMITTER_NAME: 'Agent Smith',
    GIT_COMMITTER_EMAIL: 'agent@example.test',
  };
}

export class Scenario {
  private tick = 0;
  private constructor(
    readonly root: string,
    readonly env: NodeJS.ProcessEnv,
    readonly server: CaptureServer,
    readonly bare: string,
    readonly work: string,
  ) {}

  get remoteUrl(): string {
    return `${this.server.url}/r.git`;
  }

  /** Creates upstream r.git with an initial commit on main (README.md, src/app.js) and a clone. */
  static async create(): Promise<Scenario> {
    const root = await tempDir('scenario');
    const env = isolatedEnv(join(root, 'home'));
    await mkdir(join(root, 'home'));
    const bare = join(root, 'srv', 'r.git');
    await git(['-c', 'init.defaultBranch=main', 'init', '-q', '--bare', bare], { env });
    await git(['--git-dir', bare, 'config', 'http.receivepack', 'true'], { env });
    const server = await startCaptureServer(join(root, 'srv'), env);
    const work = join(root, 'work');
    const s = new Scenario(root, env, server, bare, work);
    await git(['-c', 'init.defaultBranch=main', 'init', '-q', work], { env });
    await s.g(['remote', 'add', 'origin', s.remoteUrl]);
    await s.commit('Initial commit', {
      'README.md': '# r\n\nA test repository.\n',
      'src/app.js': Array.from({ length: 40 }, (_, i) => `console.log('line ${i}');`).join('\n') + '\n',
    });
    const r = await s.push(['origin', 'main']);
    if (r.code !== 0) throw new Error(`seed push failed: ${r.stderr}`);
    s.server.posts.length = 0;
    return s;
  }

  async g(args: string[], opts: { cwd?: string; okCodes?: number[]; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const r = await git(args, { cwd: opts.cwd ?? this.work, env: opts.env ?? this.env, okCodes: opts.okCodes });
    return r.stdout.toString('utf8').trim();
  }

  /** Writes files (null deletes) and commits them with a deterministic date. Returns the commit oid. */
  async commit(message: string, files: Record<string, string | Buffer | null>, opts: { mode?: Record<string, number> } = {}): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      const p = join(this.work, path);
      if (content === null) { await unlink(p); continue; }
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, content);
    }
    for (const [path, mode] of Object.entries(opts.mode ?? {})) await chmod(join(this.work, path), mode);
    await this.g(['add', '-A']);
    const date = `${1700000000 + ++this.tick * 60} +0100`;
    const env = { ...this.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
    await this.g(['commit', '-q', '--allow-empty', '-m', message], { env });
    return this.g(['rev-parse', 'HEAD']);
  }

  /** A bare clone of upstream as it is now: what RemoteCache would hold before the push. */
  async snapshot(): Promise<string> {
    const dir = join(await tempDir('cache'), 'cache.git');
    await git(['clone', '-q', '--bare', this.bare, dir], { env: this.env });
    return dir;
  }

  /** Runs `git push <args>` from the work clone; returns its result and the POST bodies it sent. */
  async push(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string; posts: CapturedPost[] }> {
    const before = this.server.posts.length;
    const r = await git(['push', ...args], { cwd: this.work, env: { ...this.env, ...extraEnv }, okCodes: [0, 1, 128] });
    return { code: r.code, stderr: r.stderr, posts: this.server.posts.slice(before) };
  }

  async close(): Promise<void> {
    await this.server.close();
    await rm(this.root, { recursive: true, force: true, maxRetries: 3 });
  }
}
