// Recognises git smart-HTTP requests by method and path.

export type GitRequestKind = 'git-push' | 'git-push-advert' | 'git-fetch' | 'git-fetch-advert';

export interface GitRequestClass {
  kind: GitRequestKind;
  /** Path before `/info/refs` or `/git-…-pack`, e.g. `/owner/repo.git`. */
  repoPath: string;
}

export function classifyGitRequest(method: string, pathAndQuery: string): GitRequestClass | null {
  const q = pathAndQuery.indexOf('?');
  const path = q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery;
  const query = q >= 0 ? pathAndQuery.slice(q + 1) : '';
  const m = method.toUpperCase();
  if (m === 'POST') {
    const svc = /^(.*)\/git-(receive|upload)-pack$/.exec(path);
    if (!svc || svc[1] === '') return null;
    return { kind: svc[2] === 'receive' ? 'git-push' : 'git-fetch', repoPath: svc[1] };
  }
  if (m === 'GET') {
    const refs = /^(.*)\/info\/refs$/.exec(path);
    if (!refs || refs[1] === '') return null;
    let service: string | null;
    try {
      service = new URLSearchParams(query).get('service');
    } catch {
      return null;
    }
    if (service === 'git-receive-pack') return { kind: 'git-push-advert', repoPath: refs[1] };
    if (service === 'git-upload-pack') return { kind: 'git-fetch-advert', repoPath: refs[1] };
  }
  return null;
}
