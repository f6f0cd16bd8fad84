import { appendFileSync } from 'node:fs';
const on = !!process.env.AIRLOCK_TRACE_FIRST;
export function tr(what: string): void { if (on) appendFileSync('/tmp/trace.log', `${(performance.now()).toFixed(3)} ${what}\n`); }
