// The JupyterLab extension template's lint rules (github.com/jupyterlab/extension-template), with prettier's layout.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import globals from 'globals';
import jupyterPlugin from '@jupyter/eslint-plugin';

export default defineConfig([
  {
    // The Jest specs are outside tsconfig.json's project (ts-jest compiles them), as in the template.
    ignores: ['node_modules', 'lib', 'coverage', '**/*.js', '**/*.d.ts', '**/__tests__']
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    plugins: {
      jupyter: jupyterPlugin
    }
  },
  jupyterPlugin.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      globals: {
        ...globals.browser,
        ...globals.es2015,
        ...globals.node
      },
      parserOptions: {
        project: 'tsconfig.json',
        sourceType: 'module'
      }
    },
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: {
            regex: '^I[A-Z]',
            match: true
          }
        }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      curly: ['error', 'all'],
      // `x != null` is the check for a field that is null or (in an older event) missing.
      eqeqeq: ['error', 'smart'],
      'prefer-arrow-callback': 'error',
      // The extension ships no translations: its words are English, as the server's messages are.
      'jupyter/no-untranslated-string': 'off',
      // The sidebar and the run renderer are created in activate(): a lazy import would only delay them.
      'jupyter/prefer-lazy-imports': 'off'
    }
  },
  prettierRecommended
]);
