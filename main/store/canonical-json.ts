// Deterministic JSON: object keys sorted (by UTF-16 code units) at every depth, no whitespace.
// Otherwise the same value space as JSON.stringify: toJSON() is honoured, undefined/functions/symbols
// are dropped from objects and become null in arrays, non-finite numbers become null.
// canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x) for every x it accepts.

export function canonicalJson(value: unknown): string {
  const out = encode(value, new Set());
  return out === undefined ? 'null' : out;
}

function encode(value: unknown, seen: Set<object>): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt values cannot be serialized');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError('canonicalJson: circular structure');
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      return `[${obj.map((v) => encode(v, seen) ?? 'null').join(',')}]`;
    }
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(rec).sort()) {
      const v = encode(rec[key], seen);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    seen.delete(obj);
  }
}
