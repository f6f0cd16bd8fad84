import { Transform, type TransformCallback } from 'node:stream';
import { normalizeSecrets } from '../store/mask';

/**
 * Replaces every occurrence of the given secrets, in each of the forms an upstream echoes them in
 * (`secretForms`: JSON-escaped, percent-encoded), in a byte stream with '*' of the same length (so
 * Content-Length stays right), also across chunk borders.
 */
export class MaskStream extends Transform {
  private readonly needles: Buffer[];
  private readonly keep: number;
  private carry = Buffer.alloc(0);

  constructor(secrets: string[]) {
    super();
    this.needles = formsOf(secrets).map((s) => Buffer.from(s)).sort((a, b) => b.length - a.length);
    this.keep = Math.max(0, ...this.needles.map((n) => n.length - 1));
  }

  private mask(buf: Buffer): void {
    for (const n of this.needles) {
      let i = buf.indexOf(n);
      while (i !== -1) {
        buf.fill(0x2a, i, i + n.length);
        i = buf.indexOf(n, i + n.length);
      }
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = Buffer.concat([this.carry, chunk]);
    this.mask(buf);
    const cut = Math.max(0, buf.length - this.keep);
    this.carry = Buffer.from(buf.subarray(cut));
    cb(null, buf.subarray(0, cut));
  }

  override _flush(cb: TransformCallback): void {
    this.mask(this.carry);
    cb(null, this.carry);
  }
}

/** `normalizeSecrets` (each usable secret in each of its forms, longest first), once per list: a credential's list lives as long as it does. */
const forms = new WeakMap<readonly string[], string[]>();
function formsOf(secrets: readonly string[]): string[] {
  let f = forms.get(secrets);
  if (!f) forms.set(secrets, (f = normalizeSecrets(secrets)));
  return f;
}

/** `s` with every secret, in each of its forms, replaced by '*' of the same length (longest first). */
export function maskString(s: string, secrets: string[]): string {
  let out = s;
  for (const x of formsOf(secrets)) if (out.includes(x)) out = out.split(x).join('*'.repeat(x.length));
  return out;
}
