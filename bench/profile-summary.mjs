// Summarises V8 CPU profiles (`BENCH_PROFILE=<dir> npm run bench -- ...`):
// the functions with the most self time, as a share of the samples.
//   node bench/profile-summary.mjs <file.cpuprofile> [top]
import { readFile } from 'node:fs/promises'

const [file, top = '15'] = process.argv.slice(2)
const profile = JSON.parse(await readFile(file, 'utf8'))
const selfSamples = new Map()
for (const sample of profile.samples) selfSamples.set(sample, (selfSamples.get(sample) ?? 0) + 1)
const byFunction = new Map()
let total = 0
for (const node of profile.nodes) {
  const count = selfSamples.get(node.id) ?? 0
  if (count === 0) continue
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|bench)\//, '$1/')}:${lineNumber + 1}`
  const key = `${functionName || '(anonymous)'}${where}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + count)
  total += count
}
const idle = byFunction.get('(idle)') ?? 0
console.log(`${file}: ${total} samples, ${((1 - idle / total) * 100).toFixed(1)} % busy`)
for (const [name, count] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  console.log(`${(count / total * 100).toFixed(1).padStart(5)} %  ${name}`)
}
