// The registered saga types as the dashboard uses them (GET /ui/tipos.json: each
// one's route, example, request schema and search keys), read once per page.
import { api } from './api.js';

let loaded;

/** `{ ok, status, data }` of GET /ui/tipos.json; a failed read is tried again at the next call. */
export function sagaTypes() {
  loaded ??= api('GET', '/ui/tipos.json').then((res) => {
    if (!res.ok) loaded = undefined;
    return res;
  });
  return loaded;
}
