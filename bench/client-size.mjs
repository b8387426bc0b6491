// Prints the size of fastify-realtime/client as an app would ship it: bundled, minified, gzipped.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const result = await build({
  entryPoints: [new URL('../lib/client/index.ts', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'neutral',
  write: false,
  logLevel: 'warning'
})
const code = result.outputFiles[0].contents
console.log(`fastify-realtime/client: ${code.length} bytes minified, ${gzipSync(code, { level: 9 }).length} bytes gzipped`)
