import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-artifacts/', 'docs/api/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The core is what every transport calls; it never calls a transport, so data flows one way.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'fastify', message: 'src/core/ is transport-neutral: HTTP belongs in src/server/.' },
            { name: '@grpc/grpc-js', message: 'src/core/ is transport-neutral: gRPC belongs in src/grpc/.' },
          ],
          patterns: [
            {
              group: ['**/server/*', '**/grpc/*', '**/library/*', '**/processing/*', '**/cli/*', '**/bench/*'],
              message:
                'src/core/ is called by the transports (HTTP, gRPC, in-process, /predict, bench) and imports none of them.',
            },
          ],
        },
      ],
    },
  },
  {
    // The dashboard's plain browser script, loaded after uPlot's global build.
    files: ['src/dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        uPlot: 'readonly',
        ResizeObserver: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        Blob: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
