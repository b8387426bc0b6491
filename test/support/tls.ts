import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Teardown } from './redis.js'

/*
 * A self-signed certificate made for one test by the `openssl` CLI (Debian's
 * openssl package; .ci/run installs it where missing): nothing is committed
 * and no npm dependency is needed. Valid for 127.0.0.1 and localhost, one
 * day; being self-signed, the certificate is also its own CA.
 */

export interface TestCertificate {
  /** PEM of the certificate (pass it as `ca` to trust it). */
  cert: string
  /** PEM of its private key. */
  key: string
  certPath: string
  keyPath: string
}

/** Generates a certificate in a temp dir, removed at teardown. */
export async function selfSignedCertificate (t: Teardown): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'
  ])
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), certPath, keyPath }
}
