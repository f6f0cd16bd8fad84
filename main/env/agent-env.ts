/**
 * The environment that routes a shell or a command through Airlock: proxy
 * variables (with the agent's credentials) and the CA each tool needs. Tools
 * whose variable *adds* a CA get the Airlock CA; tools whose variable
 * *replaces* the trust store get the combined bundle (system roots + Airlock CA).
 */
export interface AgentEnvInput {
  proxyUrl: string; // http://127.0.0.1:PORT
  agent: string;
  token: string;
  caPath: string;
  bundlePath: string;
  nodePreloadPath: string;
  /** wget's startup file naming the bundle (writeWgetrc); WGETRC when given. */
  wgetrcPath?: string;
  existingNodeOptions?: string;
  /** git `url.<base>.insteadOf` rewrites (SSH forms → HTTPS), added through GIT_CONFIG_COUNT. */
  gitRewrites?: Array<{ base: string; insteadOf: string }>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

export function agentEnv(i: AgentEnvInput): Record<string, string> {
  const u = new URL(i.proxyUrl);
  u.username = encodeURIComponent(i.agent);
  u.password = encodeURIComponent(i.token);
  const proxy = u.toString().replace(/\/$/, '');
  const preload = `--require ${quoteNodeOption(i.nodePreloadPath)}`;
  // Already there (a nested `airlock run`): as written, or quoted as this function writes it.
  const nodeOptions = i.existingNodeOptions?.includes(i.nodePreloadPath) || i.existingNodeOptions?.includes(quoteNodeOption(i.nodePreloadPath))
    ? i.existingNodeOptions
    : [i.existingNodeOptions, preload].filter(Boolean).join(' ');
  const env: Record<string, string> = {
    HTTPS_PROXY: proxy,
    HTTP_PROXY: proxy,
    https_proxy: proxy,
    http_proxy: proxy,
    ALL_PROXY: proxy,
    all_proxy: proxy,
    // Nothing bypasses Airlock: an inherited NO_PROXY could let an agent around it.
    NO_PROXY: '',
    no_proxy: '',
    NODE_EXTRA_CA_CERTS: i.caPath, // adds to Node's built-in roots
    NODE_USE_ENV_PROXY: '1', // Node ≥ 22.21 / 24.5
    NODE_OPTIONS: nodeOptions, // older Node: the preload routes fetch/http/https
    GIT_SSL_CAINFO: i.bundlePath,
    SSL_CERT_FILE: i.bundlePath,
    CURL_CA_BUNDLE: i.bundlePath,
    REQUESTS_CA_BUNDLE: i.bundlePath,
    PIP_CERT: i.bundlePath,
    CARGO_HTTP_CAINFO: i.bundlePath,
    AWS_CA_BUNDLE: i.bundlePath,
    DENO_CERT: i.caPath,
    npm_config_proxy: proxy,
    npm_config_https_proxy: proxy,
    npm_config_cafile: i.bundlePath,
    npm_config_noproxy: '', // npm's own NO_PROXY: an inherited one would let npm around Airlock
    AIRLOCK_AGENT: i.agent,
  };
  if (i.wgetrcPath) env.WGETRC = i.wgetrcPath;
  const gitConfig: Array<[string, string]> = (i.gitRewrites ?? []).map((r) => [`url.${r.base}.insteadOf`, r.insteadOf]);
  // Git for Windows with its default TLS backend (schannel) ignores GIT_SSL_CAINFO unless told not to,
  // and would then not trust Airlock's CA (git's http.c).
  if ((i.platform ?? process.platform) === 'win32') gitConfig.push(['http.schannelUseSSLCAInfo', 'true']);
  if (gitConfig.length > 0) {
    env.GIT_CONFIG_COUNT = String(gitConfig.length);
    gitConfig.forEach(([key, value], n) => {
      env[`GIT_CONFIG_KEY_${n}`] = key;
      env[`GIT_CONFIG_VALUE_${n}`] = value;
    });
  }
  return env;
}

function quoteNodeOption(p: string): string {
  return /[\s"'\\]/.test(p) ? JSON.stringify(p) : p;
}

/** POSIX shell `export` lines, single-quoted so nothing is expanded. */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`).join('\n') + '\n';
}

/** The shells `airlock env` writes for: sh/bash/zsh/dash (`posix`), fish, and PowerShell (5 and 7). */
export const SHELLS = ['posix', 'fish', 'powershell'] as const;
export type Shell = (typeof SHELLS)[number];

const SHELL_NAMES: Record<string, Shell> = {
  posix: 'posix', sh: 'posix', bash: 'posix', zsh: 'posix', dash: 'posix', ksh: 'posix', ash: 'posix',
  fish: 'fish',
  powershell: 'powershell', pwsh: 'powershell',
};

/** `--shell NAME` → a shell, or null for a name this does not know. */
export function shellNamed(name: string): Shell | null {
  return SHELL_NAMES[name.toLowerCase()] ?? null;
}

/**
 * The shell to write for when none is named, as ssh-agent and docker-machine guess it: the login
 * shell in `SHELL` (fish, or else POSIX); on Windows without `SHELL` (not Git Bash, not MSYS),
 * PowerShell, the shell Windows opens by default.
 */
export function detectShell(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): Shell {
  const login = env.SHELL?.split(/[\\/]/).pop()?.replace(/\.exe$/i, '') ?? '';
  if (login) return shellNamed(login) === 'fish' ? 'fish' : 'posix';
  return platform === 'win32' ? 'powershell' : 'posix';
}

/**
 * Lines that set `env` in `shell`, every value quoted so that nothing in it is expanded:
 * - fish: `set -gx NAME 'value'` (in single quotes only `\\` and `'` are special);
 * - PowerShell: `$env:NAME = 'value'`, non-ASCII characters as `[char]` codes (powershellString); that
 *   also keeps out the typographic quotes U+2018–U+201B, which end a single-quoted string there too.
 */
export function shellLines(env: Record<string, string>, shell: Shell): string {
  if (shell === 'posix') return exportLines(env);
  const line = shell === 'fish'
    ? ([k, v]: [string, string]) => `set -gx ${k} '${v.replace(/[\\']/g, (c) => `\\${c}`)}'`
    : ([k, v]: [string, string]) => `$env:${k} = ${powershellString(v)}`;
  return Object.entries(env).map(line).join('\n') + '\n';
}

/**
 * A PowerShell expression for `value` in ASCII only. PowerShell decodes a program's output with the
 * console's code page, not UTF-8, so `José` printed as UTF-8 would arrive as `JosÃ©` and a path with
 * it would name a missing file. Non-ASCII characters are written as `[char]0x00E9` (UTF-16 code units)
 * joined to single-quoted ASCII runs; the expression starts with a string so that `+` joins strings.
 */
export function powershellString(value: string): string {
  const parts: string[] = [];
  let run = '';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) {
      run += value[i] === "'" ? "''" : value[i];
      continue;
    }
    if (run || parts.length === 0) parts.push(`'${run}'`);
    run = '';
    parts.push(`[char]0x${code.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  if (run || parts.length === 0) parts.push(`'${run}'`);
  return parts.join(' + ');
}

/** How to load `airlock env`'s output in `shell` (for help texts and the README). */
export function loadHint(shell: Shell, command: string): string {
  if (shell === 'fish') return `${command} | source`;
  if (shell === 'powershell') return `${command} | Out-String | Invoke-Expression`;
  return `eval "$(${command})"`;
}

/**
 * wget's startup file for agent runs: the bundle as its CA file (GNU wget built with GnuTLS, as
 * Debian's, reads no CA variable) and the proxy variables in force. It stands in for the user's
 * ~/.wgetrc during `airlock run` (WGETRC replaces that file; /etc/wgetrc is still read first).
 */
export function wgetrcText(bundlePath: string): string {
  if (/[\r\n]/.test(bundlePath)) throw new Error('the bundle path holds a line break');
  return `# Written by Airlock for agent runs (WGETRC): trust Airlock's CA bundle, use the proxy variables.\nca_certificate = ${bundlePath}\nuse_proxy = on\n`;
}
