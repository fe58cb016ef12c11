// Type-checked lint: the rules that catch unawaited promises and unsafe `any`
// matter most in an actor system, where a dropped promise is a lost write.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // scripts/bench/dbos: DBOS Transact for the benchmark's comparison, installed on demand; its own tsconfig checks it.
  { ignores: ['node_modules/', '.data/', 'dist/', 'test-output/', 'scripts/bench/dbos/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...layering(),
  { files: ['eslint.config.js', 'ava.browser.config.js', 'ava.pulsar.config.js'], ...tseslint.configs.disableTypeChecked },
  // The dashboard's browser modules (src/ui): plain ES modules with no build, so no type information.
  {
    files: ['src/ui/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window', 'document', 'location', 'sessionStorage', 'fetch', 'URL', 'URLSearchParams', 'AbortController', 'TextDecoderStream',
          'Blob', 'crypto', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Intl', 'console',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);

/**
 * The layering rule of docs/architecture.md, as `no-restricted-imports` per folder of src/.
 * Imports are relative paths, so each rule is a regex over the path as written:
 * - src/saga imports nothing else of the project;
 * - the engine (src/saga, src/actors, src/persistence, src/cluster, src/events, src/operator)
 *   never imports src/http;
 * - nothing but src/roles.ts and src/bin imports src/participants or src/sagas (or src/roles.ts,
 *   src/bin): they are what wires the engine, the saga types and the reference services together;
 * - src/sagas (saga types, as data) imports only src/saga; src/participants never imports src/sagas.
 * A later block replaces an earlier one's options for the files both match, so each file set
 * below is given every restriction it is under.
 */
function layering() {
  const rule = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
  const up = String.raw`^(\./|(\.\./)+)`;
  const wiring = {
    regex: String.raw`${up}(participants|sagas|bin)/|${up}roles\.js$`,
    message: 'Only src/roles.ts and src/bin wire the engine, the saga types (src/sagas) and the reference services (src/participants) together (docs/architecture.md).',
  };
  const http = {
    regex: String.raw`${up}http/`,
    message: 'The engine never imports src/http: HTTP is an edge over it (docs/architecture.md).',
  };
  const engine = ['src/actors/**/*.ts', 'src/persistence/**/*.ts', 'src/cluster/**/*.ts', 'src/events/**/*.ts', 'src/operator/**/*.ts'];
  const saga = { message: 'src/saga imports nothing else of the project: it is the pure core (docs/architecture.md).' };
  return [
    {
      files: ['src/**/*.ts'],
      ignores: ['src/roles.ts', 'src/bin/**', 'src/participants/**', 'src/sagas/**', 'src/saga/**', ...engine],
      rules: rule(wiring),
    },
    { files: engine, rules: rule(wiring, http) },
    { files: ['src/saga/**/*.ts'], rules: rule({ regex: String.raw`^\.\./`, ...saga }) },
    {
      files: ['src/persistence/**/*.ts'],
      rules: rule(wiring, http, {
        regex: String.raw`${up}faults\.js$`,
        message: 'The saga log reads as production code: faults reach it only as the hooks src/faults.ts builds at start (docs/architecture.md).',
      }),
    },
    {
      files: ['src/participants/**/*.ts'],
      rules: rule({ regex: String.raw`${up}(sagas|bin)/|${up}roles\.js$`, message: 'The reference services never import the saga types or the wiring (docs/architecture.md).' }),
    },
    { files: ['src/sagas/*.ts'], rules: rule({ regex: String.raw`^\.\./(?!saga/)`, message: 'A saga type imports only src/saga (docs/architecture.md).' }) },
    { files: ['src/sagas/*/*.ts'], rules: rule({ regex: String.raw`^\.\./\.\./(?!saga/)`, message: 'A saga type imports only src/saga (docs/architecture.md).' }) },
  ];
}
