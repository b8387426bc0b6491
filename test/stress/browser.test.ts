import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type Test } from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { startExample, type ExampleServer } from '../support/example-server.js'

/*
 * A real browser (Debian's headless Chromium) on the example served as
 * `npm start` serves it: one page speaks the protocol with the bare
 * `WebSocket`, the other with fastify-realtime/client.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Chromium with a fresh profile, closed (and the profile removed) at teardown. */
async function browser (t: Test): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'realtime-chromium-'))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  return context
}

/** Opens a page of the example and connects as `user` through its form. */
async function chatPage (context: BrowserContext, server: ExampleServer, path: string, user: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`http://127.0.0.1:${server.port}${path}`)
  await page.fill('#user', user)
  await page.click('#login button')
  return page
}

/** Resolves once the page's log shows a line with exactly this text. */
async function logShows (page: Page, text: string): Promise<void> {
  await page.locator('#log div', { hasText: text }).last().waitFor({ timeout: 20_000 })
}

async function post (server: ExampleServer, path: string, body: unknown): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  return response.status
}

// CI installs Chromium (.ci/run); elsewhere, without it, this file says so and skips rather than failing.
const skip = !existsSync(CHROMIUM) && process.env.CI === undefined
  ? `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`
  : false

test('two browser pages chat through a room, a REST push shows up, the client page survives a server restart', { skip }, async (t) => {
  let server = await startExample()
  t.teardown(() => server.stop())
  const context = await browser(t)
  const failures: string[] = []

  const bare = await chatPage(context, server, '/', 'alice')
  const typed = await chatPage(context, server, '/client', 'bob')
  for (const page of [bare, typed]) page.on('pageerror', (err) => failures.push(err.message))
  await bare.locator('#state', { hasText: 'connected as alice' }).waitFor()
  await typed.locator('#state', { hasText: 'open' }).waitFor()

  for (const page of [bare, typed]) {
    await page.fill('#room', 'lobby')
    await page.click('#joinForm button')
    await logShows(page, 'joined lobby')
  }

  await typed.fill('#text', 'hello from the client')
  await typed.click('#sayForm button')
  await logShows(bare, '[lobby] bob: hello from the client')
  await bare.fill('#text', 'hello from the bare page')
  await bare.click('#sayForm button')
  await logShows(typed, '[lobby] alice: hello from the bare page')

  t.equal(await post(server, '/notify/bob', { text: 'for bob only' }), 202)
  await logShows(typed, 'notification: for bob only')

  // Restart: the server says 1001, the client page reconnects to the new process and rejoins lobby.
  const port = server.port
  t.equal(await server.stop(), 0)
  await typed.locator('#state', { hasText: 'reconnecting' }).waitFor()
  await logShows(bare, 'disconnected: 1001')
  server = await startExample({}, port)
  await typed.locator('#state', { hasText: 'open' }).waitFor({ timeout: 40_000 })

  t.equal(await post(server, '/rooms/lobby/messages', { text: 'after the restart' }), 202)
  await logShows(typed, '[lobby] server: after the restart')
  t.equal(await post(server, '/notify/bob', { text: 'still for bob' }), 202)
  await logShows(typed, 'notification: still for bob')

  t.same(failures, [], 'no uncaught error in either page')
})
