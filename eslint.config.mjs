// Lint rules: typescript-eslint's recommended set, plus the one architectural rule DESIGN.md cares most
// about: src/protocol imports nothing of ours, and apps never import each other; and no import cycles.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const apps = ['plugin', 'terminal', 'server'];
// src/device: what plugins and units share (registration files, the signed event stream); the server uses
// only its SQLite driver seam (sqlite-driver.ts and its drivers), nothing device-specific.
const appRules = apps.map((app) => ({
  files: [`src/${app}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: apps
          .filter((other) => other !== app)
          .map((other) => ({
            group: [`**/${other}/**`, `**/${other}`],
            message: 'apps talk over the LAN and HTTP, never by import',
          })),
      },
    ],
  },
}));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '**/node_modules/**',
      'coverage/**',
      'var/**',
      'test/artifacts/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Plain Node scripts of a one-off study with packages of its own (bench/lan/aead-study/README.md).
    files: ['bench/lan/aead-study/**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        Buffer: 'readonly',
        global: 'readonly',
        setTimeout: 'readonly',
        performance: 'readonly',
      },
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../*', '!./*'], message: 'src/protocol is pure and imports nothing of ours' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/lan/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/plugin/**',
                '**/terminal/**',
                '**/server/**',
                '**/adapters/**',
                '**/printer/**',
                '**/cli/**',
              ],
              message: 'src/lan may import only src/protocol',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/printer/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/lan/**',
                '**/lan',
                '**/adapters/**',
                '**/plugin/**',
                '**/terminal/**',
                '**/server/**',
                '**/cli/**',
              ],
              message: 'src/printer may import only src/protocol',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/lan/**', '**/lan', '**/plugin/**', '**/terminal/**', '**/server/**', '**/cli/**'],
              message: 'src/adapters may import only src/protocol and src/printer',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/device/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/plugin/**',
                '**/terminal/**',
                '**/server/**',
                '**/adapters/**',
                '**/printer/**',
                '**/cli/**',
              ],
              message: 'src/device may import only src/protocol and src/lan',
            },
          ],
        },
      ],
    },
  },
  ...appRules,
  // No import cycles in our TypeScript: in a cycle one module sees the other half-loaded (an undefined
  // class or constant at load time); the shared definition belongs in a small module of its own instead.
  // Type-only cycles are ignored, and that is the choice we want: import-x/no-cycle always skips
  // `import type` (and imports whose every name is marked `type`), which compile to nothing, so they cannot
  // cause a load-order bug, and two modules may well describe each other's types. Everything else counts,
  // including an unmarked import of a name that is only a type (mark it `import type` if that is all it
  // is). ignoreExternal: packages are not ours and are not walked. Modules are resolved as tsc resolves
  // them (tsconfig.json), offline.
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // import-x reads only the files it is told it can parse (by default .js): ours are .ts.
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
);
