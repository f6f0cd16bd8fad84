// Regenerates test/fixtures/git/*.bin and fixtures.json:
//   node --import tsx test/git/make-fixtures.ts
import { writeFile, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseReceivePackRequest } from '../../main/git/receive-pack';
import { generateFixtures } from './fixtures-gen';

const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'git');

async function main(): Promise<void> {
  await mkdir(dir, { recursive: true });
  const bodies = await generateFixtures();
  const manifest: Record<string, unknown> = {};
  for (const [name, body] of Object.entries(bodies)) {
    await writeFile(join(dir, `${name}.bin`), body);
    const r = parseReceivePackRequest(body);
    manifest[name] = {
      bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'),
      commands: r.commands, capabilities: r.capabilities, packOffset: r.packOffset, hasPack: r.hasPack,
      packObjectCount: r.packObjectCount,
    };
  }
  await writeFile(join(dir, 'fixtures.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${Object.keys(bodies).length} fixtures to ${dir}`);
}
void main();
