// Types of schema-form.js, for the tests that import it (the dashboard's modules are plain JavaScript).
export interface FormField {
  name: string;
  path: string[];
  label: string;
  kind: 'text' | 'number' | 'enum' | 'boolean' | 'json';
  options: string[];
  suggestions: string[];
  required: boolean;
  group: string;
  groupLabel: string;
}
export function fieldsOf(schema: unknown): FormField[];
export function groupsOf(fields: FormField[]): { group: string; label: string; fields: FormField[] }[];
export function valuesOf(fields: FormField[], body: unknown): Record<string, string>;
export function bodyOf(fields: FormField[], values: Record<string, string>): Record<string, unknown>;
