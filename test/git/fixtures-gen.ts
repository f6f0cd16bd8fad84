// Builds the golden receive-pack bodies in test/fixtures/git/ with real `git push`.
// Dates and names are fixed, so the object ids (and the commands) are the same on every run;
// the pack bytes may differ between git versions.
import { Scenario } from './scenario';

export const FIXTURE_NAMES = ['create-branch', 'update-ff', 'tag', 'two-refs', 'delete'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/**
 * Runs the fixture scenario and returns each captured body. With `snapshots`, also a bare
 * clone of upstream taken just before each push (the caller removes `dirname(cache)`).
 */
export async function generateFixtures(): Promise<Record<FixtureName, Buffer>>;
export async function generateFixtures(opts: { snapshots: true }): Promise<Record<FixtureName, { body: Buffer; cache: string }>>;
export async function generateFixtures(opts: { snapshots?: boolean } = {}): Promise<Record<FixtureName, Buffer | { body: Buffer; cache: string }>> {
  const s = await Scenario.create();
  try {
    const out = {} as Record<FixtureName, Buffer | { body: Buffer; cache: string }>;
    const push = async (name: FixtureName, args: string[]): Promise<void> => {
      const cache = opts.snapshots ? await s.snapshot() : null;
      const r = await s.push(args);
      if (r.code !== 0) throw new Error(`push for ${name} failed: ${r.stderr}`);
      const body = r.posts[r.posts.length - 1].body;
      out[name] = cache ? { body, cache } : body;
    };
    await s.g(['checkout', '-q', '-b', 'feature']);
    await s.commit('Add feature', { 'src/feature.js': 'export const feature = 1;\n' });
    await push('create-branch', ['origin', 'feature']);
    await s.commit('Update feature', { 'src/feature.js': 'export const feature = 2;\n' });
    await push('update-ff', ['origin', 'feature']);
    const date = '1700100000 +0000';
    await s.g(['tag', '-a', '-m', 'Release 1.0', 'v1.0'], { env: { ...s.env, GIT_COMMITTER_DATE: date } });
    await push('tag', ['origin', 'v1.0']);
    await s.g(['checkout', '-q', 'main']);
    await s.commit('Docs', { 'README.md': '# r\n\nNow with docs.\n' });
    await s.g(['checkout', '-q', '-b', 'topic']);
    await s.commit('Topic work', { 'topic.txt': 'topic\n' });
    await push('two-refs', ['origin', 'main', 'topic']);
    await push('delete', ['origin', '--delete', 'feature']);
    return out;
  } finally {
    await s.close();
  }
}
