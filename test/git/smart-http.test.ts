import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyGitRequest } from '../../main/git/index';

test('classifyGitRequest table', () => {
  const table: Array<[string, string, ReturnType<typeof classifyGitRequest>]> = [
    ['POST', '/owner/repo.git/git-receive-pack', { kind: 'git-push', repoPath: '/owner/repo.git' }],
    ['GET', '/owner/repo.git/info/refs?service=git-receive-pack', { kind: 'git-push-advert', repoPath: '/owner/repo.git' }],
    ['POST', '/owner/repo/git-upload-pack', { kind: 'git-fetch', repoPath: '/owner/repo' }],
    ['GET', '/owner/repo.git/info/refs?service=git-upload-pack', { kind: 'git-fetch-advert', repoPath: '/owner/repo.git' }],
    ['get', '/a/b/c.git/info/refs?foo=1&service=git-upload-pack', { kind: 'git-fetch-advert', repoPath: '/a/b/c.git' }],
    ['GET', '/r.git/info/refs', null], // dumb protocol
    ['GET', '/r.git/info/refs?service=git-evil', null],
    ['GET', '/r.git/git-receive-pack', null],
    ['POST', '/r.git/info/refs?service=git-receive-pack', null],
    ['PUT', '/r.git/git-receive-pack', null],
    ['POST', '/git-receive-pack', null],
    ['POST', '/r.git/git-receive-pack/extra', null],
    ['GET', '/api/v3/repos', null],
  ];
  for (const [method, path, want] of table) {
    assert.deepEqual(classifyGitRequest(method, path), want, `${method} ${path}`);
  }
});
