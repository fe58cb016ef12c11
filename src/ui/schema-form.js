// A create form for any saga type, from the JSON Schema of its request body
// (GET /ui/tipos.json): every leaf of the schema is a field named by its path
// (campana.presupuesto.monto), grouped by its top-level key, filled from the
// type's example. Text (with its schema's examples offered), numbers, enums and
// booleans get inputs; anything else (records, arrays, unions) is edited as
// JSON. Values the form cannot convert are sent as typed, for the server to name.

/**
 * The fields of `schema`, in its order: { name, path, label, kind, options (an
 * enum's), suggestions (a text's `examples`), required, group, groupLabel }.
 * A label is the schema's description, else the path below the group.
 */
export function fieldsOf(schema) {
  const fields = [];
  const describedAs = (s, path) => (typeof s?.description === 'string' ? s.description : path.join(' ').replaceAll('_', ' '));
  const walk = (s, path, required, groupLabel) => {
    if (s?.type === 'object' && s.properties !== undefined && Object.keys(s.properties).length > 0) {
      const label = path.length === 1 ? describedAs(s, path) : groupLabel;
      for (const [key, child] of Object.entries(s.properties)) walk(child, [...path, key], (s.required ?? []).includes(key) && required, label);
      return;
    }
    const kind = Array.isArray(s?.enum)
      ? 'enum'
      : s?.type === 'string'
        ? 'text'
        : s?.type === 'number' || s?.type === 'integer'
          ? 'number'
          : s?.type === 'boolean'
            ? 'boolean'
            : 'json';
    fields.push({
      name: path.join('.'),
      path,
      label: describedAs(s, path.slice(path.length > 1 ? 1 : 0)),
      kind,
      options: kind === 'enum' ? s.enum.map(String) : [],
      suggestions: kind === 'text' && Array.isArray(s.examples) ? s.examples.map(String) : [],
      required,
      group: path.length > 1 ? path[0] : '',
      groupLabel: path.length > 1 ? groupLabel : 'General',
    });
  };
  walk(schema, [], true, 'General');
  return fields;
}

/** The fields grouped by top-level key, in order: [{ group, label, fields }]. */
export function groupsOf(fields) {
  const groups = [];
  for (const f of fields) {
    const last = groups[groups.length - 1];
    if (last?.group === f.group) last.fields.push(f);
    else groups.push({ group: f.group, label: f.groupLabel, fields: [f] });
  }
  return groups;
}

const at = (value, path) => path.reduce((v, key) => (v !== null && typeof v === 'object' ? v[key] : undefined), value);

/** The form's values (text, by field name) from a request body such as the type's example. */
export function valuesOf(fields, body) {
  const values = {};
  for (const f of fields) {
    const v = at(body, f.path);
    values[f.name] = v === undefined || v === null ? '' : f.kind === 'json' ? JSON.stringify(v) : String(v);
  }
  return values;
}

function converted(f, raw) {
  switch (f.kind) {
    case 'number':
      return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case 'boolean':
      return raw === 'true';
    case 'json':
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

/** The request body from the form's values; an optional field left empty is left out. */
export function bodyOf(fields, values) {
  const body = {};
  for (const f of fields) {
    const raw = values[f.name] ?? '';
    if (raw === '' && !f.required) continue;
    let target = body;
    for (const key of f.path.slice(0, -1)) target = target[key] ??= {};
    target[f.path[f.path.length - 1]] = converted(f, raw);
  }
  return body;
}
