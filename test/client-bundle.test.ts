import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { build } from 'esbuild'

/*
 * fastify-realtime/client is what apps ship to browsers: it must bundle
 * on its own (no dependency, nothing of Node's, nothing of the server's
 * code but the wire protocol in lib/protocol/) and stay small.
 */

const ENTRY = fileURLToPath(new URL('../lib/client/index.ts', import.meta.url))
/** Minified bytes; 8.2 KB when this was written, 10.6 KB with session resume. Raise it only knowingly. */
const BUDGET = 11 * 1024

test('the client bundles from its own files only, for any platform, within its size budget', async (t) => {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    minify: true,
    format: 'esm',
    // Neutral: a Node built-in (or a package) imported by the client would fail to resolve here.
    platform: 'neutral',
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  const inputs = Object.keys(result.metafile.inputs)
  t.ok(inputs.length > 0)
  // The client's own files, and the wire protocol it shares with the server (lib/protocol/ imports nothing else).
  const foreign = inputs.filter((input) => !input.startsWith('lib/client/') && !input.startsWith('lib/protocol/'))
  t.same(foreign, [], 'every bundled file is lib/client/* or lib/protocol/*')
  const size = result.outputFiles[0]!.contents.length
  t.ok(size <= BUDGET, `${size} bytes minified, budget ${BUDGET}`)
})
