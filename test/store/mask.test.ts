import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskHeaders, maskText } from '../../main/store';
import { isSensitiveHeader, MAX_CHECKED_DECODED_BYTES, maskBody, maskedHeadersJson, maskEncodedBody, maskQuery, normalizeSecrets, querySecrets } from '../../main/store/mask';

test('maskHeaders: credential headers by name (any case), secrets inside other values, undefined dropped', () => {
  const out = maskHeaders(
    {
      AUTHORIZATION: 'Bearer abc',
      'Proxy-Authorization': 'Basic xyz',
      cookie: 'a=1',
      'set-cookie': ['a=1', 'b=2'],
      'x-api-key': 'k',
      'x-forwarded': 'via supersecret1 and supersecret1',
      'x-none': undefined,
      accept: '*/*',
    },
    ['supersecret1'],
  );
  assert.deepEqual(out, {
    AUTHORIZATION: '[masked]',
    'Proxy-Authorization': '[masked]',
    cookie: '[masked]',
    'set-cookie': ['[masked]', '[masked]'],
    'x-api-key': '[masked]',
    'x-forwarded': 'via [masked] and [masked]',
    accept: '*/*',
  });
});

test('maskedHeadersJson: the same JSON as maskHeaders in every case, including its fast path', () => {
  const secrets = normalizeSecrets(['supersecret1', 'quo"tedsecret', 'back\\slashsecret', 'line\nbreaksecret']);
  const cases: Array<Record<string, string | string[] | undefined>> = [
    { host: 'example.test', accept: '*/*' }, // nothing to mask: the fast path
    { host: 'example.test', 'set-cookie': ['a=1'] }, // sensitive name
    { Host: 'example.test', Authorization: 'Bearer x' }, // sensitive name in another case
    { 'x-a': 'via supersecret1' }, // a secret in a value
    { 'x-a': ['one', 'two supersecret1'] }, // in an array value
    { 'x-a': 'a quo"tedsecret here' }, // a secret JSON escapes: never looked for in the JSON text
    { 'x-a': 'a back\\slashsecret here' },
    { 'x-a': 'a line\nbreaksecret here' },
    { 'x-a': undefined, 'x-b': 'kept' }, // undefined dropped
    { 'content-length': 12 as unknown as string }, // a number from OutgoingHttpHeaders: stored as text
    { 'x-a': [1, 'two'] as unknown as string[] },
    {},
  ];
  for (const h of cases) {
    for (const list of [[], secrets]) {
      assert.equal(maskedHeadersJson(h, list), JSON.stringify(maskHeaders(h, list)), JSON.stringify(h));
    }
  }
  assert.equal(maskedHeadersJson({ 'x-a': 'a quo"tedsecret here' }, secrets), '{"x-a":"a [masked] here"}');
  assert.equal(maskedHeadersJson({ 'content-length': 12 as unknown as string }, []), '{"content-length":"12"}');
});

test('maskText: longest secret first, empty and tiny secrets ignored', () => {
  assert.equal(maskText('token=abcd1234efgh', ['abcd', 'abcd1234efgh']), 'token=[masked]');
  assert.equal(maskText('nothing here', ['', 'a', 'xyz']), 'nothing here');
  assert.deepEqual(normalizeSecrets(['aaaa', 'aaaa', 'bbbbbb', '']), ['bbbbbb', 'aaaa']);
});

test('maskBody: text masked with [masked]; any other body byte for byte with * of the same length; same buffer when nothing matches', () => {
  const s = normalizeSecrets(['tok-123456']);
  const plain = Buffer.from('hello');
  assert.equal(maskBody(plain, s), plain);
  assert.equal(maskBody(Buffer.from('a tok-123456 b'), s).toString(), 'a [masked] b');
  // Not UTF-8 (a protobuf, a Latin-1 page): the secret's bytes are masked all the same, offsets kept.
  const bin = Buffer.from([0x00, 0xc3, 0x28, ...Buffer.from('tok-123456'), 0xff, ...Buffer.from('tok-123456')]);
  const masked = maskBody(bin, s);
  assert.equal(masked.length, bin.length);
  assert.deepEqual(masked, Buffer.from([0x00, 0xc3, 0x28, ...Buffer.from('**********'), 0xff, ...Buffer.from('**********')]));
  const latin1 = Buffer.from('caf\xe9 token=tok-123456', 'latin1');
  assert.equal(maskBody(latin1, s).toString('latin1'), 'caf\xe9 token=**********');
});

test('secretForms: a secret is also masked JSON-escaped and percent-encoded, as upstreams echo it', () => {
  const secret = 'Basic YWxp/2Uk+cw==';
  const s = normalizeSecrets([secret, 'tôken-ü1"x']);
  const echoes = [
    JSON.stringify({ youSent: secret }), // as it is
    '{"youSent":"Basic YWxp\\/2Uk+cw=="}', // PHP's json_encode escapes '/'
    '{"a":"t\\u00f4ken-\\u00fc1\\"x"}', // Python's json.dumps: non-ASCII as \\uXXXX
    `{"a":${JSON.stringify('tôken-ü1"x')}}`, // a quote escaped
    `https://example.test/cb?auth=${encodeURIComponent(secret)}`, // a redirect URL
    `auth=${encodeURIComponent(secret).replace(/%20/g, '+')}`, // a form body
    `auth=${encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`,
  ];
  for (const e of echoes) {
    const out = maskText(e, s);
    assert.match(out, /\[masked\]/, e);
    assert.ok(!out.includes('YWxp') && !out.includes('ken-'), `${e} -> ${out}`);
    assert.equal(maskBody(Buffer.from(e), s).toString(), out, e);
  }
  // In the fast JSON of a header map too.
  const h = { 'x-echo': `sent ${secret}`, location: `/x?t=${encodeURIComponent(secret)}` };
  assert.equal(maskedHeadersJson(h, s), JSON.stringify(maskHeaders(h, [secret, 'tôken-ü1"x'])));
  assert.ok(!maskedHeadersJson(h, s).includes('YWxp'));
});

test('maskEncodedBody: gzip, deflate and br bodies (also stacked) are checked decoded, masked and encoded again; a body that cannot be decoded is not stored', async () => {
  const zlib = await import('node:zlib');
  const s = normalizeSecrets(['ghp_E2eSecretToken9876543210']);
  const text = Buffer.from(JSON.stringify({ youSent: 'Bearer ghp_E2eSecretToken9876543210', pad: 'x'.repeat(3000) }));
  const codecs: Array<[string, (b: Buffer) => Buffer, (b: Buffer) => Buffer]> = [
    ['gzip', zlib.gzipSync, zlib.gunzipSync],
    ['x-gzip', zlib.gzipSync, zlib.gunzipSync],
    ['deflate', zlib.deflateSync, zlib.inflateSync],
    ['deflate', zlib.deflateRawSync, zlib.inflateRawSync],
    ['br', zlib.brotliCompressSync, zlib.brotliDecompressSync],
  ];
  for (const [enc, encode, decode] of codecs) {
    const body = encode(text);
    assert.ok(!body.includes('ghp_E2e'), `${enc}: the secret is not visible in the encoded bytes`);
    const out = maskEncodedBody(body, ` ${enc.toUpperCase()} `, true, s)!;
    const back = (enc === 'deflate' ? zlib.inflateSync : decode)(out).toString();
    assert.ok(!back.includes('ghp_E2e'), `${enc}: masked in the decoded body`);
    assert.equal(back, text.toString().replace('ghp_E2eSecretToken9876543210', '[masked]'), enc);
    // Nothing to mask: the same buffer.
    const clean = encode(Buffer.from('{"ok":true}'));
    assert.equal(maskEncodedBody(clean, enc, true, s), clean, enc);
  }
  // A capped prefix of a gzip body decodes as far as it goes.
  const noise = (await import('node:crypto')).randomBytes(20000).toString('hex');
  const gz = zlib.gzipSync(Buffer.from(`token: ghp_E2eSecretToken9876543210\n${noise}`));
  const prefix = gz.subarray(0, 2000);
  const cut = maskEncodedBody(prefix, 'gzip', false, s)!;
  assert.notEqual(cut, prefix);
  assert.ok(!zlib.gunzipSync(cut).toString().includes('ghp_E2e'), 'the masked prefix, encoded again');
  // A body that inflates past the checking limit is not stored, nor one that does not decode: its
  // compressed bytes would hide a secret from the byte search (found by fuzzing: a gzip cut short,
  // a bad CRC, junk after the end, a coding not known here). Its hash and size are kept.
  const bomb = zlib.gzipSync(Buffer.alloc(MAX_CHECKED_DECODED_BYTES + 1));
  assert.equal(maskEncodedBody(bomb, 'gzip', true, s), null);
  const notGzip = Buffer.from('not gzip ghp_E2eSecretToken9876543210');
  assert.equal(maskEncodedBody(notGzip, 'gzip', true, s), null);
  assert.equal(maskEncodedBody(notGzip, 'zstd', true, s), null);
  assert.equal(maskEncodedBody(notGzip, 'compress', true, s), null);
  const secretGz = zlib.gzipSync(Buffer.from('{"youSent":"Bearer ghp_E2eSecretToken9876543210"}'));
  const badCrc = Buffer.from(secretGz);
  badCrc[badCrc.length - 8] ^= 0xff;
  const corrupt: Array<[string, Buffer]> = [
    ['cut short, recorded as complete', secretGz.subarray(0, secretGz.length - 4)],
    ['bad CRC32', badCrc],
    ['junk after the end', Buffer.concat([secretGz, Buffer.from('junk')])],
  ];
  // The secret is in there for anyone who decodes leniently:
  assert.ok(zlib.gunzipSync(corrupt[0]![1], { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString().includes('ghp_E2e'));
  for (const [what, b] of corrupt) {
    assert.equal(maskEncodedBody(b, 'gzip', true, s), null, what);
  }
  // Stacked codings are undone last first, masked, and applied again in their order.
  for (const [enc, layers] of [['gzip, gzip', [zlib.gzipSync, zlib.gzipSync]], ['gzip, br', [zlib.gzipSync, zlib.brotliCompressSync]], ['identity, gzip', [zlib.gzipSync]]] as const) {
    let body = Buffer.from(text);
    for (const f of layers) body = f(body);
    const out = maskEncodedBody(body, enc, true, s)!;
    assert.ok(out !== null, enc);
    let back = out;
    for (const f of [...layers].reverse()) back = f === zlib.gzipSync ? zlib.gunzipSync(back) : zlib.brotliDecompressSync(back);
    assert.equal(back.toString(), text.toString().replace('ghp_E2eSecretToken9876543210', '[masked]'), enc);
  }
  // Without secrets nothing is decoded.
  assert.equal(maskEncodedBody(bomb, 'gzip', true, []), bomb);
});

test('credential headers of the APIs agents call are masked by name; ordinary headers are kept', () => {
  const masked = [
    'Authorization', 'Cookie', 'Set-Cookie', 'X-Api-Key', 'x-goog-api-key', 'api-key', 'PRIVATE-TOKEN', 'Job-Token',
    'X-Auth-Token', 'X-Vault-Token', 'X-Amz-Security-Token', 'DD-API-KEY', 'DD-APPLICATION-KEY', 'X-Hub-Signature-256',
    'X-Slack-Signature', 'X-Sentry-Auth', 'X-CSRF-Token', 'X-Session-Id', 'X-GitHub-OTP', 'X-Client-Secret', 'X-Password',
  ];
  const kept = [
    'Host', 'Accept', 'Content-Type', 'Content-Length', 'User-Agent', 'X-Request-Id', 'WWW-Authenticate', 'Proxy-Authenticate',
    'X-GitHub-Api-Version', 'X-Amz-Date', 'X-Amz-Content-Sha256', 'Anthropic-Version', 'OpenAI-Organization', 'Keep-Alive',
    'X-RateLimit-Remaining', 'ETag', 'Location', 'Cache-Control',
  ];
  for (const n of masked) assert.equal(isSensitiveHeader(n), true, n);
  for (const n of kept) assert.equal(isSensitiveHeader(n), false, n);
  const h = Object.fromEntries([...masked, ...kept].map((n) => [n, 'value-1']));
  const out = maskHeaders(h, []);
  for (const n of masked) assert.equal(out[n], '[masked]', n);
  for (const n of kept) assert.equal(out[n], 'value-1', n);
  assert.equal(maskedHeadersJson(h, []), JSON.stringify(out), 'the JSON path agrees');
});

test('maskQuery: values of token, key, secret and signature parameters; everything else as written', () => {
  assert.equal(maskQuery('/v1beta/models/gemini:generateContent?key=AIzaSyA1b2c3&alt=sse'),
    '/v1beta/models/gemini:generateContent?key=[masked]&alt=sse');
  assert.equal(maskQuery('/cb?code=4%2F0Ab&state=xyz'), '/cb?code=[masked]&state=xyz');
  assert.equal(maskQuery('/b/o.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ab12&X-Amz-Expires=60'),
    '/b/o.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[masked]&X-Amz-Signature=[masked]&X-Amz-Expires=60');
  assert.equal(maskQuery('/blob?sv=2024&sig=Zm9v%3D&se=2026'), '/blob?sv=2024&sig=[masked]&se=2026');
  assert.equal(maskQuery('/x?access_token=a&github_token=b&client_secret=c&my-api-key=d&page=2'),
    '/x?access_token=[masked]&github_token=[masked]&client_secret=[masked]&my-api-key=[masked]&page=2');
  assert.equal(maskQuery('/x?%74oken=a'), '/x?%74oken=[masked]', 'names are compared decoded');
  assert.equal(maskQuery('/x?TOKEN=a'), '/x?TOKEN=[masked]', 'in any case');
  for (const p of ['/plain/path', '/x?page=2&per_page=100', '/x?token=', '/x?token', '/x?%zz=1', '/x?']) assert.equal(maskQuery(p), p);
});

test('querySecrets: the values of sensitive query parameters, as sent and decoded, long enough to search for', () => {
  assert.deepEqual(querySecrets('/a'), []);
  assert.deepEqual(querySecrets('/a?page=2&q=hello-world-1234'), []);
  assert.deepEqual(querySecrets('/a?access_token=abcdefgh123&page=2'), ['abcdefgh123']);
  assert.deepEqual(querySecrets('/a?api%5Fkey=a%2Bb%2Fc%3D1234&x'), ['a%2Bb%2Fc%3D1234', 'a+b/c=1234']);
  assert.deepEqual(querySecrets('/a?token=short&sig=x%ZZbadescape#frag'), ['x%ZZbadescape']);
  assert.deepEqual(querySecrets('/a?client_secret=two+words+here#token=notthis12345'), ['two+words+here', 'two words here']);
});
