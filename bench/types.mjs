// Type-check budget: what a user's editor pays for our generics.
//
// Type-checks each consumer fixture of bench/types-fixtures/ on its own
// (`tsc --extendedDiagnostics --noEmit`, strict, skipLibCheck as most apps
// have it) against the built declarations (`npm run build` first: the
// fixtures import 'fastify-realtime' by the package's own name, which
// resolves to dist/ through package.json "exports"), and prints the
// instantiations and check time of each. Exits 1 when the budget fails:
// ten WebSocket routes (d) may cost at most twice the same ten endpoint
// pairs written as REST routes with @fastify/type-provider-typebox (e).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = join(root, 'bench', 'types-fixtures')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const BUDGET = 2

const work = mkdtempSync(join(tmpdir(), 'rt-types-'))
const rows = []
try {
  for (const file of readdirSync(fixtures).filter((name) => name.endsWith('.ts')).sort()) {
    const project = join(work, `${file}.tsconfig.json`)
    writeFileSync(project, JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
        strict: true,
        skipLibCheck: true,
        noEmit: true
      },
      files: [join(fixtures, file)]
    }))
    let output
    let errors = 0
    try {
      output = execFileSync(process.execPath, [tsc, '-p', project, '--extendedDiagnostics'], { encoding: 'utf8' })
    } catch (err) {
      // tsc exits 2 on type errors and still prints its diagnostics.
      output = String(err.stdout)
      errors = (output.match(/error TS\d+/g) ?? []).length
      if (errors > 0) process.stderr.write(output.split('\n').filter((line) => /error TS/.test(line)).join('\n') + '\n')
    }
    rows.push({
      fixture: file.replace(/\.ts$/, ''),
      instantiations: figure(output, 'Instantiations'),
      types: figure(output, 'Types'),
      checkTime: figure(output, 'Check time'),
      errors
    })
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

console.log('fixture                 instantiations    types  check time  errors')
for (const row of rows) {
  console.log(`${row.fixture.padEnd(22)} ${String(row.instantiations).padStart(15)} ${String(row.types).padStart(8)} ${(row.checkTime.toFixed(2) + 's').padStart(11)} ${String(row.errors).padStart(7)}`)
}
const ws = rows.find((row) => row.fixture.startsWith('d-'))
const rest = rows.find((row) => row.fixture.startsWith('e-'))
const ratio = ws.instantiations / rest.instantiations
const held = ratio <= BUDGET && rows.every((row) => row.errors === 0)
console.log(`\nbudget: (d) ten WebSocket routes <= ${BUDGET} x (e) ten REST endpoint pairs: ${ratio.toFixed(2)} x, ${held ? 'held' : 'FAILED'}`)
if (!held) process.exitCode = 1

function figure (output, label) {
  const match = new RegExp(`^${label}:\\s+([\\d.]+)`, 'm').exec(output)
  if (match === null) throw new Error(`tsc printed no "${label}"`)
  return Number(match[1])
}
