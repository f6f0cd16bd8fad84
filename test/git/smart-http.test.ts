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
    ['POST', '/r.git/git-receive-pack/extra', null],
    ['POST', '/git-upload-pack', null],
    ['GET', '/api/v3/repos', null],
    // A repository at the root of its host is still a push.
    ['POST', '/git-receive-pack', { kind: 'git-push', repoPath: '' }],
    // Servers route on the decoded path: a disguised receive-pack path is still a push.
    ['POST', '/r.git/git%2Dreceive-pack', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/r.git%2Fgit-receive-pack', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/R.GIT/GIT-RECEIVE-PACK', { kind: 'git-push', repoPath: '/R.GIT' }],
    ['POST', '/r.git/git-receive-pack/', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/r.git//git-receive-pack?x=1', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/my%20repo.git/git-receive-pack', { kind: 'git-push', repoPath: '/my repo.git' }],
    ['POST', '/r.git/git%ZZreceive-pack', null], // does not decode: taken as sent
    ['GET', '/r.git/info%2Frefs?service=git-receive-pack', { kind: 'git-push-advert', repoPath: '/r.git' }],
    // WHATWG URL parsers (many routers) read '\\' as '/' and drop a fragment: so does the classifier.
    ['POST', '/r.git\\git-receive-pack', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/r.git%5Cgit-receive-pack', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/r.git/git-receive-pack#f', { kind: 'git-push', repoPath: '/r.git' }],
    ['POST', '/r.git/git-receive-pack#?x=1', { kind: 'git-push', repoPath: '/r.git' }],
    ['GET', '/r.git\\info\\refs?service=git-receive-pack', { kind: 'git-push-advert', repoPath: '/r.git' }],
  ];
  for (const [method, path, want] of table) {
    assert.deepEqual(classifyGitRequest(method, path), want, `${method} ${path}`);
  }
});

test('a POST with the receive-pack content type is a push whatever its path', () => {
  const ct = 'application/x-git-receive-pack-request';
  assert.deepEqual(classifyGitRequest('POST', '/r.git/git-receive-pack', ct), { kind: 'git-push', repoPath: '/r.git' });
  assert.deepEqual(classifyGitRequest('POST', '/r.git/git-receive-pack;v=1', ct), { kind: 'git-push', repoPath: '/r.git' });
  assert.deepEqual(classifyGitRequest('POST', '/r.git/git-upload-pack', `${ct}; charset=binary`), { kind: 'git-push', repoPath: '/r.git' });
  assert.deepEqual(classifyGitRequest('POST', '/anything', ct.toUpperCase()), { kind: 'git-push', repoPath: '' });
  assert.deepEqual(classifyGitRequest('POST', '/r.git/git-upload-pack', 'application/x-git-upload-pack-request'), { kind: 'git-fetch', repoPath: '/r.git' });
  assert.equal(classifyGitRequest('GET', '/r.git/x', ct), null); // a GET carries no pack
  assert.equal(classifyGitRequest('POST', '/r.git/x', 'application/json'), null);
});
