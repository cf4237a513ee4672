// Shared plumbing for the interop scripts. The Python tests write one JSON request
// {"cases": [{"op": ..., ...}, ...]} on stdin and read {"results": [...]} from stdout.
// Each result is {"ok": value} or, when the library under test threw, {"error": message}.
// An unknown op is a bug in the test, so it ends the process with a non-zero status.

export async function serve(handlers) {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const results = request.cases.map((testCase) => {
    const handler = handlers[testCase.op]
    if (handler === undefined) {
      throw new Error(`unknown op ${JSON.stringify(testCase.op)}`)
    }
    try {
      return { ok: handler(testCase) }
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) }
    }
  })
  process.stdout.write(JSON.stringify({ results }))
}
