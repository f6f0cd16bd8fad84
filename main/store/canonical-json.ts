// Deterministic JSON: object keys sorted (by UTF-16 code units) at every depth, no whitespace.
// Otherwise the same value space as JSON.stringify: toJSON() is honoured, undefined/functions/symbols
// are dropped from objects and become null in arrays, non-finite numbers become null.
// canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x) for every x it accepts.

export function canonicalJson(value: unknown, opts: { strict?: boolean } = {}): string {
  const out = encode(value, new Set(), opts.strict === true);
  return out === undefined ? 'null' : out;
}

/**
 * `strict` (verification): a number JSON cannot represent (Infinity, NaN: `1e999` in an edited export
 * parses to Infinity) is an error instead of null, so that it cannot stand in for a null that was hashed.
 */
function encode(value: unknown, seen: Set<object>, strict: boolean): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (Number.isFinite(value)) return JSON.stringify(value);
      if (strict) throw new TypeError(`canonicalJson: ${String(value)} is not a JSON number`);
      return 'null';
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
      return `[${obj.map((v) => encode(v, seen, strict) ?? 'null').join(',')}]`;
    }
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(rec).sort()) {
      const v = encode(rec[key], seen, strict);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    seen.delete(obj);
  }
}
