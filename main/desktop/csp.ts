// One CSP for the renderer, wherever it is loaded from. The meta tag in
// renderer/index.html carries the same policy minus frame-ancestors (ignored in meta).
export const RENDERER_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
