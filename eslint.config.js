import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    noJsx: true,
    ignores: resolveIgnoresFromGitignore()
  }),
  {
    rules: {
      // `void promise` as a statement marks a deliberately unawaited promise (fire-and-forget pushes and joins); `void 0` stays banned.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // A `const X = {...} as const` paired with `type X = ...` (error and close codes) is deliberate; tsc reports real redeclarations.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
