import { readFileSync } from 'node:fs'
import { test } from 'tap'
import { CloseCode, WireErrorCode, errors } from '../lib/index.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const protocol = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8')

test('the README and the protocol document list every error code', async (t) => {
  for (const code of Object.values(WireErrorCode)) {
    t.match(readme, `\`${code}\``, `README: ${code}`)
    t.match(protocol, `\`${code}\``, `protocol: ${code}`)
  }
  for (const code of errors.PLUGIN_ERROR_CODES) t.match(readme, `\`${code}\``, `README: ${code}`)
  t.same(Object.keys(errors).filter((name) => name.startsWith('FST_RT_')).sort(), [...errors.PLUGIN_ERROR_CODES].sort(),
    'PLUGIN_ERROR_CODES lists every error errors.ts defines')
})

test('the README and the protocol document list every close code', async (t) => {
  for (const code of Object.values(CloseCode)) {
    t.match(readme, new RegExp(`^\\| ${code} \\|`, 'm'), `README: ${code}`)
    t.match(protocol, new RegExp(`^\\| ${code} \\|`, 'm'), `protocol: ${code}`)
  }
})

test('the README documents every plugin option', async (t) => {
  const { DEFAULTS } = await import('../lib/options.js')
  const options = [...Object.keys(DEFAULTS), 'allowedOrigins', 'userId', 'broker', 'redis']
  for (const option of options) t.match(readme, new RegExp(`^\\| \`${option}\` \\|`, 'm'), option)
})

test('the README documents every client option and client error code', async (t) => {
  const { ClientErrorCode } = await import('../lib/client/index.js')
  for (const code of Object.values(ClientErrorCode)) t.match(readme, new RegExp(`^\\| \`${code}\` \\|`, 'm'), code)
  // The options are read off the ClientOptions interface itself, so a new one cannot go undocumented.
  const source = readFileSync(new URL('../lib/client/options.ts', import.meta.url), 'utf8')
  const body = /export interface ClientOptions[^{]*\{([\s\S]*?)\n\}/.exec(source)![1]!
  const options = [...body.matchAll(/^ {2}(\w+)\?:/gm)].map((match) => match[1]!)
  t.same(options.length, 11, 'every option of ClientOptions is found')
  for (const option of options) t.match(readme, new RegExp(`^\\| \`${option}\` \\| [^|]+ \\|`, 'm'), option)
})
