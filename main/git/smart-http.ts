// Recognises git smart-HTTP requests by method, path and content type.
//
// Servers route on the decoded path (CGI's PATH_INFO is percent-decoded, as are most routers'), and
// git http-backend accepts a pack only with the receive-pack request content type. So a push is
// recognised on the decoded path, in any letter case, with or without a trailing slash, and by its
// content type alone: a pack sent by hand to a disguised path is still held (fail closed).

export type GitRequestKind = 'git-push' | 'git-push-advert' | 'git-fetch' | 'git-fetch-advert';

export interface GitRequestClass {
  kind: GitRequestKind;
  /** Path before `/info/refs` or `/git-…-pack`, decoded, e.g. `/owner/repo.git` ('' for a repository at the root). */
  repoPath: string;
}

export const RECEIVE_PACK_REQUEST = 'application/x-git-receive-pack-request';

/**
 * The path as a server may route it: without a fragment, percent-decoded once (left as sent when it
 * does not decode), and with `\` read as `/`, as WHATWG URL parsers read it in http(s) URLs.
 */
function routedPath(path: string): string {
  const hash = path.indexOf('#');
  let p = hash >= 0 ? path.slice(0, hash) : path;
  if (p.includes('%')) {
    try {
      p = decodeURIComponent(p);
    } catch {
      // judged as sent
    }
  }
  return p.includes('\\') ? p.replace(/\\/g, '/') : p;
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

export function classifyGitRequest(method: string, pathAndQuery: string, contentType?: string): GitRequestClass | null {
  const q = pathAndQuery.indexOf('?');
  const path = routedPath(q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery);
  const query = q >= 0 ? pathAndQuery.slice(q + 1) : '';
  const m = method.toUpperCase();
  if (m === 'POST') {
    const svc = /^(.*?)\/+git-(receive|upload)-pack\/*$/i.exec(path);
    if (svc?.[2]!.toLowerCase() === 'receive') return { kind: 'git-push', repoPath: svc[1]! };
    if (mediaType(contentType) === RECEIVE_PACK_REQUEST) {
      // A pack for receive-pack on a path that does not say so: held all the same.
      return { kind: 'git-push', repoPath: path.replace(/\/+[^/]*$/, '') };
    }
    if (svc && svc[1] !== '') return { kind: 'git-fetch', repoPath: svc[1]! };
    return null;
  }
  if (m === 'GET') {
    const refs = /^(.*?)\/+info\/refs\/*$/i.exec(path);
    if (!refs || refs[1] === '') return null;
    let service: string | null;
    try {
      service = new URLSearchParams(query).get('service');
    } catch {
      return null;
    }
    if (service === 'git-receive-pack') return { kind: 'git-push-advert', repoPath: refs[1]! };
    if (service === 'git-upload-pack') return { kind: 'git-fetch-advert', repoPath: refs[1]! };
  }
  return null;
}
