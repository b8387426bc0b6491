import type { Connection } from './connection.js'
import { FST_RT_HOOK_AFTER_READY, FST_RT_INVALID_OPTION } from './errors.js'
import type { InboundMessage } from './parse-envelope.js'

/*
 * Per-message hooks, encapsulated like Fastify's: a hook added in a context
 * covers the routes declared in that context and its descendants, whether
 * declared before or after it. A route reads its hooks once, at its first
 * message; hooks are fixed once the app is ready.
 */

/** A message as the hooks see it: its type, its validated data, its request id. */
export type RealtimeMessage = InboundMessage

/**
 * Runs after validation, before the handler. Throw (or reject with) a
 * RealtimeError to refuse the message with its code; any other error answers
 * INTERNAL and is logged. The handler runs once every hook has returned.
 */
export type PreMessageHook<C = Connection<any, any>> = (conn: C, message: RealtimeMessage) => void | Promise<void>

/**
 * Called, for logging, when a message ends in an error answer (unknown type,
 * per-type rate limit, validation, a preMessage refusal, a handler error);
 * `error` is a RealtimeError carrying the code sent, or the handler's own error.
 * What it throws or rejects with is logged and changes nothing.
 */
export type OnMessageErrorHook<C = Connection<any, any>> = (conn: C, message: RealtimeMessage, error: Error) => void | Promise<void>

/** The names `addHook` takes. */
export type MessageHookName = 'preMessage' | 'onMessageError'

/** One route's hooks: the plugin's (outer contexts first), then the route's own. */
export interface MessageHooks {
  readonly preMessage: ReadonlyArray<PreMessageHook>
  readonly onMessageError: ReadonlyArray<OnMessageErrorHook>
}

interface ContextHooks {
  preMessage: PreMessageHook[]
  onMessageError: OnMessageErrorHook[]
}

/** Hooks of a route declaration (`preMessage`, `onMessageError`: a function or an array). */
export interface RouteHookOptions {
  preMessage?: unknown
  onMessageError?: unknown
}

/** The plugin's hooks, one list per Fastify context that added any. */
export class HookRegistry {
  readonly #byContext = new WeakMap<object, ContextHooks>()
  #locked = false

  /** Adds a hook to the routes of `context` (a Fastify instance) and its descendants. */
  add (context: object, name: MessageHookName, hook: unknown): void {
    if (name !== 'preMessage' && name !== 'onMessageError') {
      throw new FST_RT_INVALID_OPTION('addHook name', "'preMessage' or 'onMessageError'")
    }
    if (typeof hook !== 'function') throw new FST_RT_INVALID_OPTION(`addHook ${name}`, 'a function')
    if (this.#locked) throw new FST_RT_HOOK_AFTER_READY(name)
    let hooks = this.#byContext.get(context)
    if (hooks === undefined) {
      hooks = { preMessage: [], onMessageError: [] }
      this.#byContext.set(context, hooks)
    }
    (hooks[name] as unknown[]).push(hook)
  }

  /** Called once the app is ready: no hook may be added afterwards. */
  lock (): void {
    this.#locked = true
  }

  /**
   * The hooks of a route declared in `context`, read when called (at the
   * route's first message): every context from the outermost down to
   * `context` (Fastify contexts inherit from their parent's object), then the
   * route's own options, checked now.
   */
  resolver (path: string, context: object, route: RouteHookOptions): () => MessageHooks {
    const own = {
      preMessage: hookList(`${path} preMessage`, route.preMessage) as PreMessageHook[],
      onMessageError: hookList(`${path} onMessageError`, route.onMessageError) as OnMessageErrorHook[]
    }
    return () => {
      const chain: ContextHooks[] = []
      for (let level: object | null = context; level !== null; level = Object.getPrototypeOf(level) as object | null) {
        const hooks = this.#byContext.get(level)
        if (hooks !== undefined) chain.unshift(hooks)
      }
      chain.push(own)
      return {
        preMessage: chain.flatMap((hooks) => hooks.preMessage),
        onMessageError: chain.flatMap((hooks) => hooks.onMessageError)
      }
    }
  }
}

function hookList (name: string, value: unknown): unknown[] {
  if (value === undefined) return []
  const list = Array.isArray(value) ? value : [value]
  if (!list.every((hook) => typeof hook === 'function')) throw new FST_RT_INVALID_OPTION(name, 'a function or an array of functions')
  return list
}

/**
 * Runs `hooks` from `index` on, in order, then `proceed`. A hook that
 * returns a non-promise costs no microtask; one that returns a promise
 * resumes the rest when it settles, unless the connection closed meanwhile.
 */
export function runPreMessage (hooks: ReadonlyArray<PreMessageHook>, index: number, conn: Connection<any, any>,
  message: RealtimeMessage, proceed: () => void, refuse: (err: unknown) => void): void {
  for (let i = index; i < hooks.length; i++) {
    let result: unknown
    try {
      result = hooks[i]!(conn, message)
    } catch (err) {
      refuse(err)
      return
    }
    if (result instanceof Promise) {
      result.then(() => {
        if (!conn.closed) runPreMessage(hooks, i + 1, conn, message, proceed, refuse)
      }, refuse)
      return
    }
  }
  proceed()
}

/** Calls the onMessageError hooks; what they throw or reject with is logged, never answered. */
export function notifyMessageError (hooks: ReadonlyArray<OnMessageErrorHook>, conn: Connection<any, any>,
  message: RealtimeMessage, error: Error): void {
  for (const hook of hooks) {
    try {
      const result = hook(conn, message, error)
      if (result instanceof Promise) result.catch((err: unknown) => { logHookError(conn, message, err) })
    } catch (err) {
      logHookError(conn, message, err)
    }
  }
}

function logHookError (conn: Connection<any, any>, message: RealtimeMessage, err: unknown): void {
  conn.log.error({ err, namespace: conn.namespace.path, messageType: message.type, connectionId: conn.id },
    'realtime onMessageError hook failed')
}
