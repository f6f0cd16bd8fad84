import { userInfo } from 'node:os';

/**
 * The audit log's actor for a person at this machine: `local:<account>`. The account is the
 * process's own (the OS says who runs it), not `$USER`, which any caller can set: the CLI, the
 * console and the desktop app write the same name for the same person.
 */
export function localActor(): string {
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = process.env.USER ?? process.env.USERNAME;
  }
  return `local:${name || 'user'}`;
}
