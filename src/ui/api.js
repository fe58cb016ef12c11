// Talking to the BFF: every call goes to the origin that served the panel.
// The operator's token lives in sessionStorage (gone when the tab closes) and
// goes as `Authorization: Bearer …`; contract routes simply ignore it.
const TOKEN_KEY = 'aeropartners-saga-token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

/** One request; never throws: `{ ok, status, data }`, with data the parsed JSON body (or null). */
export async function api(method, path, body, headers = {}) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  try {
    const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try {
      data = text === '' ? null : JSON.parse(text);
    } catch {
      data = { error: 'respuesta_no_json', detail: text.slice(0, 200) };
    }
    return { ok: res.ok, status: res.status, data };
  } catch (err) {
    return { ok: false, status: 0, data: { error: 'sin_conexion', detail: `No se pudo contactar con el servidor: ${err.message}` } };
  }
}

/** What to show a person for a failed call: the server's `detail` (same as `detalle`). */
export function errorText(res) {
  const d = res.data ?? {};
  if (typeof d.detail === 'string' && d.detail !== '') return d.detail;
  if (typeof d.detalle === 'string') return d.detalle;
  if (Array.isArray(d.detalle)) return d.detalle.map((p) => `${p.campo}: ${p.mensaje}`).join('; ');
  return `HTTP ${res.status}`;
}

/** Query string of the non-empty values only: an empty filter is no filter. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
