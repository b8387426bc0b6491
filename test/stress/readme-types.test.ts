import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { test } from 'tap'

/*
 * The TypeScript snippets of the documentation compile as a user would
 * paste them: strict, skipLibCheck false, against the built package
 * (dist/, as `npm test` builds it first) resolved by its name, under both
 * moduleResolution nodenext and bundler. A fence `ts no-check` marks a
 * fragment; a snippet whose first line is `// some/path.ts` is written to
 * that path, so that one snippet can import another.
 */

// Two full type-checks without skipLibCheck take a while on a busy machine.
t.setTimeout(300_000)

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

/** A ```ts block of a markdown file. */
export interface Snippet {
  file: string
  line: number
  code: string
}

/** The ```ts blocks of `files` (paths relative to the repository), but those fenced `ts no-check`. */
export function extractSnippets (files: readonly string[]): Snippet[] {
  const snippets: Snippet[] = []
  for (const file of files) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const fence = /^```(\S*)(.*)$/.exec(lines[i]!)
      if (fence === null || fence[1] === '') continue
      const end = lines.indexOf('```', i + 1)
      if (end === -1) throw new Error(`${file}:${i + 1}: unclosed fence`)
      if (fence[1] === 'ts' && !/\bno-check\b/.test(fence[2]!)) {
        snippets.push({ file, line: i + 1, code: lines.slice(i + 1, end).join('\n') + '\n' })
      }
      i = end
    }
  }
  return snippets
}

/** The markdown files whose snippets must compile: the README and whatever docs/ holds. */
function markdownFiles (): string[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).sort() : []
  return ['README.md', ...docs.map((name) => `docs/${name}`)]
}

/** A project that depends on fastify-realtime, fastify, typebox, ws and the optional plugins and OpenTelemetry packages the docs use, and holds the snippets. */
function writeProject (t: { teardown: (fn: () => void) => void }, snippets: readonly Snippet[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'rt-readme-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-app', type: 'module', private: true }))
  const modules = join(dir, 'node_modules')
  mkdirSync(join(modules, '@fastify'), { recursive: true })
  mkdirSync(join(modules, '@types'), { recursive: true })
  mkdirSync(join(modules, '@opentelemetry'), { recursive: true })
  // The package as installed: its own dependencies resolve next to it.
  symlinkSync(root, join(modules, 'fastify-realtime'), 'dir')
  // ws: what a Node 20 app passes to the typed client (docs/deployment.md).
  for (const name of ['fastify', 'typebox', '@fastify/redis', '@fastify/rate-limit', '@types/node', 'ws', '@types/ws',
    '@opentelemetry/api', '@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus']) {
    symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir')
  }
  const files: string[] = []
  for (const [i, snippet] of snippets.entries()) {
    const named = /^\/\/ ([\w./-]+\.ts)\s*$/m.exec(snippet.code.split('\n')[0]!)
    const path = named?.[1] ?? `snippets/${snippet.file.replace(/[/.]/g, '-')}-${i}-line-${snippet.line}.ts`
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    // Every snippet is a module (top-level await, its own scope).
    writeFileSync(join(dir, path), `${snippet.code}export {}\n`)
    files.push(path)
  }
  const base = { target: 'ES2022', lib: ['ES2023'], types: ['node'], strict: true, skipLibCheck: false, noEmit: true }
  writeFileSync(join(dir, 'tsconfig.nodenext.json'), JSON.stringify({
    compilerOptions: { ...base, module: 'NodeNext', moduleResolution: 'NodeNext' }, files
  }))
  writeFileSync(join(dir, 'tsconfig.bundler.json'), JSON.stringify({
    compilerOptions: { ...base, module: 'ESNext', moduleResolution: 'Bundler' }, files
  }))
  return dir
}

async function typeCheck (dir: string, project: string): Promise<string> {
  try {
    await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, project)], { cwd: dir })
    return ''
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err)
  }
}

test('the TypeScript snippets of the README and docs/ compile under strict, without skipLibCheck', async (t) => {
  t.ok(existsSync(join(root, 'dist', 'lib', 'index.d.ts')), 'the package is built (npm run build)')
  const snippets = extractSnippets(markdownFiles())
  t.ok(snippets.length >= 4, `${snippets.length} snippets found`)
  const dir = writeProject(t, snippets)
  const [nodenext, bundler] = await Promise.all([typeCheck(dir, 'tsconfig.nodenext.json'), typeCheck(dir, 'tsconfig.bundler.json')])
  t.equal(nodenext, '', 'moduleResolution nodenext: no diagnostics')
  t.equal(bundler, '', 'moduleResolution bundler: no diagnostics')
})

test('the extractor takes any markdown files and skips fragments marked no-check', async (t) => {
  const dir = mkdtempSync(join(root, '.readme-types-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const name = join(dir, 'a.md').slice(root.length)
  writeFileSync(join(dir, 'a.md'), '# A\n\n```ts\nconst a = 1\n```\n\n```ts no-check\napp.ws(...)\n```\n\n```js\nx\n```\n\n```ts\n// b.ts\nexport const b = 2\n```\n')
  t.same(extractSnippets([name]).map((snippet) => [snippet.line, snippet.code]), [[3, 'const a = 1\n'], [15, '// b.ts\nexport const b = 2\n']])
})

test('the core declarations do not reach ioredis: an app without it type-checks with skipLibCheck false', async (t) => {
  const seen = new Set<string>()
  const packages = new Set<string>()
  const pending = [join(root, 'dist', 'lib', 'index.d.ts')]
  while (pending.length > 0) {
    const file = pending.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      const specifier = match[1]!
      if (specifier.startsWith('.')) pending.push(join(dirname(file), specifier.replace(/\.js$/, '.d.ts')))
      else packages.add(specifier)
    }
  }
  t.notOk(packages.has('ioredis'), `packages the core declarations import: ${[...packages].sort().join(', ')}`)
  t.ok(seen.size > 5, `${seen.size} declaration files followed from dist/lib/index.d.ts`)
})
