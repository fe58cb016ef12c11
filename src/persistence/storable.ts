// Text PostgreSQL can store. Its text and jsonb types refuse the NUL character
// and UTF-16 surrogates that are not part of a pair: a participant's error
// message or result carrying one would make a saga's write fail for ever.
// Everything the saga-log writer sends passes through here; the offending
// characters are replaced (NUL is dropped, a lone surrogate becomes U+FFFD).

// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** The same characters, for a test (a global regex's test() would keep its lastIndex between calls). */
const UNSTORABLE_ONE = new RegExp(UNSTORABLE.source);

/** True when `s` holds a character PostgreSQL text cannot store. */
export const hasUnstorable = (s: string): boolean => UNSTORABLE_ONE.test(s);

/** `s` with NUL removed and lone surrogates replaced. */
export function storableText(s: string): string {
  return s.replace(UNSTORABLE, (c) => (c === '\u0000' ? '' : '\ufffd'));
}

/** `v` with every string (keys too) made storable. */
export function storableValue(v: unknown): unknown {
  if (typeof v === 'string') return storableText(v);
  if (Array.isArray(v)) return v.map(storableValue);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [storableText(k), storableValue(x)]));
  }
  return v;
}

/** JSON.stringify escapes both as \u0000 and \udXXX; anything else needs no second pass. */
const SUSPECT = /\\u0000|\\ud[89a-f]/i;

/** The JSON text of `v`, safe for a jsonb parameter. */
export function storableJson(v: unknown): string {
  const text = JSON.stringify(v);
  return SUSPECT.test(text) ? JSON.stringify(storableValue(v)) : text;
}
