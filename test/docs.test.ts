import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { test } from 'tap'
import { CloseCode, DEFAULTS, WireErrorCode, closeCodeAllowsReconnect, errors } from '../lib/index.js'
import { ClientErrorCode } from '../lib/client/index.js'
import { INSTRUMENT_LIST } from '../lib/metrics.js'
import { CHANNELS } from '../lib/tracing.js'

/*
 * Every code table and option table has one home in docs/, and is checked
 * against the code both ways: every code or option in the code is
 * documented there, and every one documented there exists in the code.
 */

const root = new URL('../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
const docFiles = ['README.md', ...readdirSync(new URL('docs/', root)).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** The text under a heading (`## Close codes`), up to the next heading of the same or a higher level. */
function section (markdown: string, heading: string): string {
  const level = /^#+/.exec(heading)![0].length
  const start = markdown.split('\n').indexOf(heading)
  if (start === -1) throw new Error(`no heading '${heading}'`)
  const lines = markdown.split('\n').slice(start + 1)
  const end = lines.findIndex((line) => { const m = /^(#+) /.exec(line); return m !== null && m[1]!.length <= level })
  return lines.slice(0, end === -1 ? undefined : end).join('\n')
}

/** The cells of each body row of the tables in `text` (header and separator rows left out). */
function rows (text: string): string[][] {
  const result: string[][] = []
  let header = true
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) { header = true; continue }
    if (header) { header = false; continue }
    if (/^\|[\s:|-]+\|$/.test(line)) continue
    // `\|` inside a cell is an escaped pipe, not a column break.
    result.push(line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim()))
  }
  return result
}

/** The first cell of each row when it is one backticked name: `| \`CODE\` | ... |`. */
function names (text: string): string[] {
  return rows(text).map((cells) => /^`([^`]+)`$/.exec(cells[0]!)?.[1]).filter((name) => name !== undefined)
}

const sorted = (values: Iterable<string | number>): Array<string | number> => [...values].sort()

/** The property names of an exported interface, read off its source. */
function interfaceKeys (file: string, name: string): string[] {
  const source = read(file)
  const body = new RegExp(`export interface ${name}[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(source)![1]!
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((match) => match[1]!)
}

test('docs/errors.md lists every plugin error code with its HTTP status, and no other', async (t) => {
  const table = rows(section(read('docs/errors.md'), '## Plugin error codes'))
  const documented = table.map((cells) => /^`(FST_RT_\w+)`$/.exec(cells[0]!)![1]!)
  const declared = Object.keys(errors).filter((name) => name.startsWith('FST_RT_'))
  t.ok(declared.length >= 10, 'the codes are read off errors.ts')
  t.same(sorted(documented), sorted(declared))
  for (const [cell, status] of table) {
    const code = cell!.slice(1, -1) as keyof typeof errors
    if (!(code in errors)) continue
    t.equal(Number(status), new errors[code]('x', 'y').statusCode, `${code}: HTTP status`)
  }
  t.same(Object.keys(errors).filter((name) => !name.startsWith('FST_RT_')), [], 'errors.ts exports nothing but error codes')
})

test('every FST_RT_ code named anywhere in the docs exists, with the HTTP status given beside it', async (t) => {
  for (const file of docFiles) {
    const text = read(file)
    for (const [, code] of text.matchAll(/`(FST_RT_\w+)`/g)) t.ok(code! in errors, `${file}: ${code}`)
    // `503` `FST_RT_X` or 503 `FST_RT_X` in the HTTP answer tables
    for (const [, status, code] of text.matchAll(/`?(\d{3})`? `(FST_RT_\w+)`/g)) {
      t.equal(Number(status), new errors[code as keyof typeof errors]('x', 'y').statusCode, `${file}: ${status} ${code}`)
    }
  }
})

test('docs/protocol.md lists every wire error code, and no other', async (t) => {
  const documented = names(section(read('docs/protocol.md'), '## Error codes'))
  t.same(sorted(documented), sorted(Object.values(WireErrorCode)))
})

test('docs/protocol.md lists every close code, and no other, with the reconnect policy of closeCodeAllowsReconnect', async (t) => {
  const table = rows(section(read('docs/protocol.md'), '## Close codes'))
  const single = table.filter((cells) => /^\d+$/.test(cells[0]!))
  t.same(sorted(single.map((cells) => Number(cells[0]))), sorted(new Set(Object.values(CloseCode))))
  // The "reconnect?" column, and the two halves of the application range.
  const allows = (cell: string): boolean => /^(yes|after a pause)/.test(cell)
  for (const cells of table) {
    const range = /^(\d+)–(\d+)$/.exec(cells[0]!)
    const codes = range === null ? [Number(cells[0])] : [Number(range[1]), Number(range[2])]
    for (const code of codes) t.equal(closeCodeAllowsReconnect(code), allows(cells.at(-1)!), `${code}: ${cells.at(-1)}`)
  }
})

test('docs/options.md documents every plugin option with its default, and no other', async (t) => {
  const table = rows(read('docs/options.md')).filter((cells) => /^`\w+`$/.test(cells[0]!))
  const documented = table.map((cells) => cells[0]!.slice(1, -1))
  const declared = interfaceKeys('lib/options.ts', 'RealtimeOptions')
  t.ok(declared.length >= 25, 'the options are read off RealtimeOptions')
  t.same(sorted(documented), sorted(declared))
  for (const key of Object.keys(DEFAULTS)) t.ok(declared.includes(key), `DEFAULTS.${key} is an option`)
  // The default column says what DEFAULTS holds.
  for (const [cell, , defaultCell] of table) {
    const key = cell!.slice(1, -1) as keyof typeof DEFAULTS
    if (!(key in DEFAULTS)) continue
    t.same(parseLiteral(/^`([^`]+)`/.exec(defaultCell!)![1]!), DEFAULTS[key], `${key}: ${defaultCell}`)
  }
})

/** A literal as the docs write it (`'close'`, `{ interval: 30000 }`, `['token']`), as JSON. */
function parseLiteral (text: string): unknown {
  return JSON.parse(text.replace(/'/g, '"').replace(/([{,]\s*)(\w+):/g, '$1"$2":'))
}

test('docs/observability.md lists every metric instrument with its kind, unit and attributes, and no other', async (t) => {
  const table = rows(section(read('docs/observability.md'), '### Instruments'))
  const documented = table.map((cells) => /^`([^`]+)`$/.exec(cells[0]!)![1]!)
  t.ok(INSTRUMENT_LIST.length >= 14, 'the instruments are read off lib/metrics.ts')
  t.same(sorted(documented), sorted(INSTRUMENT_LIST.map((spec) => spec.name)))
  for (const [name, kind, unit, attributes] of table) {
    const spec = INSTRUMENT_LIST.find((entry) => `\`${entry.name}\`` === name)
    if (spec === undefined) continue
    t.equal(kind, spec.kind, `${name}: kind`)
    t.equal(unit, `\`${spec.unit}\``, `${name}: unit`)
    const keys = [...attributes!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!)
    t.same(sorted(keys), sorted(spec.attributes), `${name}: attributes`)
  }
})

test('docs/observability.md lists every diagnostics channel, and no other', async (t) => {
  const documented = names(section(read('docs/observability.md'), '## Diagnostics channels'))
  t.same(sorted(documented), sorted(Object.values(CHANNELS)))
})

test('docs/client.md documents every client option and client error code, and no other', async (t) => {
  const client = read('docs/client.md')
  const options = names(section(client, '## Client options'))
  const declared = interfaceKeys('lib/client/options.ts', 'ClientOptions')
  t.ok(declared.length >= 11, 'the options are read off ClientOptions')
  t.same(sorted(options), sorted(declared))
  t.same(sorted(names(section(client, '## Client errors'))), sorted(Object.values(ClientErrorCode)))
})

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchors (markdown: string): Set<string> {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '')
  return new Set([...withoutCode.matchAll(/^#+ (.+)$/gm)].map((match) => anchor(match[1]!)))
}

test('every relative link in README.md and docs/ points to a file (and heading) that exists', async (t) => {
  for (const file of docFiles) {
    const text = read(file).replace(/^```[\s\S]*?^```/gm, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue
      const [path, hash] = target!.split('#') as [string, string | undefined]
      const url = path === '' ? new URL(file, root) : new URL(path, new URL(file, root))
      t.ok(existsSync(url), `${file}: ${target} exists`)
      if (hash !== undefined && existsSync(url)) t.ok(anchors(readFileSync(url, 'utf8')).has(hash), `${file}: ${target} has its heading`)
    }
  }
})

test('the package ships README.md and docs/', async (t) => {
  const { files } = JSON.parse(read('package.json')) as { files: string[] }
  t.ok(files.includes('README.md'), 'README.md')
  t.ok(files.includes('docs'), 'docs/')
})
