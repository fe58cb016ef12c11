// Type-checked lint: the rules that catch unawaited promises and unsafe `any`
// matter most in an actor system, where a dropped promise is a lost write.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'dist/', 'test-output/'] },
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
