// Fails on any cycle of value imports among the files under lib/.
//
// An edge A -> B is a static `import` or `export ... from` in A that brings a
// value of B into A at load time. Not edges: `import type` / `export type`,
// specifiers marked `type`, names that resolve only to types (interfaces,
// type aliases: TypeScript erases those imports), and dynamic `import()`
// (it runs after both modules have loaded). A bare `import './x.js'` is an
// edge. A value imported but used only as a type still counts: write
// `import type` for it.
//
// Usage: node scripts/check-cycles.mjs [tsconfig] (default tsconfig.json)

import { relative, resolve, sep } from 'node:path'
import ts from 'typescript'

const root = process.cwd()
const libDir = resolve(root, 'lib') + sep
const configPath = resolve(root, process.argv[2] ?? 'tsconfig.json')

const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  }
})
const inLib = (file) => resolve(file).startsWith(libDir) && !file.endsWith('.d.ts')
const libFiles = parsed.fileNames.filter(inLib)
if (libFiles.length === 0) {
  console.error(`check-cycles: no lib/ files in ${relative(root, configPath)}`)
  process.exit(2)
}
const program = ts.createProgram(libFiles, parsed.options)
const checker = program.getTypeChecker()
const name = (file) => relative(root, file).split(sep).join('/')

/** Whether an import or export specifier (or default import) brings a value. */
function bringsValue (identifier) {
  let symbol = checker.getSymbolAtLocation(identifier)
  if (symbol === undefined) return true // unresolved: count it rather than miss it
  if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol) // unresolved: the unknown symbol, a value
  return (symbol.flags & ts.SymbolFlags.Value) !== 0
}

/** Whether `export * from` re-exports at least one value of the target module. */
function reexportsValue (declaration) {
  const moduleSymbol = checker.getSymbolAtLocation(declaration.moduleSpecifier)
  if (moduleSymbol === undefined) return true
  return checker.getExportsOfModule(moduleSymbol).some((s) => {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
    return (target.flags & ts.SymbolFlags.Value) !== 0
  })
}

/** The static value imports of one file: { target, line } for each. */
function valueImports (sourceFile) {
  const edges = []
  const add = (specifierNode, node) => {
    if (!ts.isStringLiteral(specifierNode)) return
    const resolved = ts.resolveModuleName(specifierNode.text, sourceFile.fileName, parsed.options, ts.sys).resolvedModule
    if (resolved === undefined) return // a package that is not installed: not ours
    const target = resolve(resolved.resolvedFileName)
    if (!inLib(target)) return
    const line = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1
    edges.push({ target, line })
  }
  for (const node of sourceFile.statements) {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause
      if (clause === undefined) { add(node.moduleSpecifier, node); continue } // import './side-effect.js'
      if (clause.isTypeOnly) continue
      const bindings = clause.namedBindings
      const value =
        (clause.name !== undefined && bringsValue(clause.name)) ||
        (bindings !== undefined && ts.isNamespaceImport(bindings)) ||
        (bindings !== undefined && ts.isNamedImports(bindings) &&
          bindings.elements.some((e) => !e.isTypeOnly && bringsValue(e.name)))
      if (value) add(node.moduleSpecifier, node)
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined) {
      if (node.isTypeOnly) continue
      const clause = node.exportClause
      const value =
        clause === undefined
          ? reexportsValue(node) // export * from
          : ts.isNamespaceExport(clause) || // export * as ns from
            clause.elements.some((e) => !e.isTypeOnly && bringsValue(e.propertyName ?? e.name))
      if (value) add(node.moduleSpecifier, node)
    } else if (ts.isImportEqualsDeclaration(node) && !node.isTypeOnly &&
      ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node)
    }
  }
  return edges
}

const graph = new Map()
let edgeCount = 0
for (const file of libFiles) {
  const sourceFile = program.getSourceFile(file)
  const edges = valueImports(sourceFile)
  graph.set(resolve(file), edges)
  edgeCount += edges.length
}

// Tarjan's strongly connected components: every component of more than one
// file, or a file importing itself, holds at least one cycle.
const index = new Map()
const low = new Map()
const stack = []
const onStack = new Set()
const components = []
let counter = 0
function connect (v) {
  index.set(v, counter)
  low.set(v, counter)
  counter++
  stack.push(v)
  onStack.add(v)
  for (const { target: w } of graph.get(v) ?? []) {
    if (!index.has(w)) {
      connect(w)
      low.set(v, Math.min(low.get(v), low.get(w)))
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), index.get(w)))
    }
  }
  if (low.get(v) === index.get(v)) {
    const component = []
    let w
    do {
      w = stack.pop()
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    components.push(component)
  }
}
for (const v of graph.keys()) if (!index.has(v)) connect(v)

/** One shortest cycle through `start` inside its component, as a list of steps. */
function cycleThrough (start, members) {
  const previous = new Map([[start, null]])
  const queue = [start]
  while (queue.length > 0) {
    const v = queue.shift()
    for (const edge of graph.get(v) ?? []) {
      if (!members.has(edge.target)) continue
      if (edge.target === start) {
        const steps = [{ from: v, ...edge }]
        for (let at = v; previous.get(at) !== null; at = previous.get(at).from) steps.unshift(previous.get(at))
        return steps
      }
      if (!previous.has(edge.target)) {
        previous.set(edge.target, { from: v, ...edge })
        queue.push(edge.target)
      }
    }
  }
  return []
}

const cycles = components.filter((c) => c.length > 1 || (graph.get(c[0]) ?? []).some((e) => e.target === c[0]))
if (cycles.length > 0) {
  console.error(`check-cycles: ${cycles.length} cycle${cycles.length > 1 ? 's' : ''} of value imports in lib/:`)
  for (const component of cycles) {
    const members = new Set(component)
    const start = [...component].sort()[0]
    const steps = cycleThrough(start, members)
    console.error('\n  ' + [start, ...steps.map((s) => s.target)].map(name).join(' -> '))
    for (const step of steps) console.error(`    ${name(step.from)}:${step.line} imports ${name(step.target)}`)
    if (component.length > steps.length) {
      console.error(`    (the same knot also takes in: ${component.filter((f) => !steps.some((s) => s.from === f)).map(name).sort().join(', ')})`)
    }
  }
  console.error('\nBreak each cycle: move the shared piece into its own file, or import types with `import type`.')
  process.exit(1)
}
console.log(`check-cycles: no cycles of value imports among ${libFiles.length} lib/ files (${edgeCount} value imports)`)
