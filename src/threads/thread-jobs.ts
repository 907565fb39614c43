/**
 * The code that runs on the worker thread (thread.ts), one handler per kind of job: reading a
 * batch of files for the archive (reader.ts) and hashing the upload's parts (digests.ts). A
 * handler gets the job's payload and returns its answer.
 */
export const THREAD_JOBS = `
const fs = require('node:fs')
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { crc32 } = require('node:zlib')
const handlers = {}

// Reads files (or pieces of them) into a slot of shared memory, one after the other, with plain
// synchronous calls. A last piece also asks for one byte more: a file that grew since it was
// listed shows up in the same pass.
const probe = Buffer.alloc(1)
const READ_NOFOLLOW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW
handlers.read = ({ root, paths: pathBytes, pieces, slot }) => {
  const view = Buffer.from(slot)
  // A Buffer arrives as a plain Uint8Array.
  const paths = Buffer.from(pathBytes.buffer, pathBytes.byteOffset, pathBytes.length)
  let at = 0
  for (let index = 0, pathStart = 0; index * 3 < pieces.length; index++) {
    const pathEnd = paths.indexOf(0, pathStart)
    const flags = pieces[index * 3 + 2]
    // A path that is not UTF-8 is opened by its bytes (PIECE_RAW_PATH): a string would name another file.
    const relativePath = flags & 2 ? paths.subarray(pathStart, pathEnd) : paths.toString('utf8', pathStart, pathEnd)
    pathStart = pathEnd + 1
    if (relativePath.length === 0) continue
    const offset = pieces[index * 3]
    const length = pieces[index * 3 + 1]
    const last = (flags & 1) === 1
    let fd
    try {
      const file = typeof relativePath === 'string' ? root + '/' + relativePath : Buffer.concat([Buffer.from(root + '/'), relativePath])
      // Never through a link: a file replaced by one since the listing fails (ELOOP) instead.
      fd = fs.openSync(file, READ_NOFOLLOW)
      let filled = 0
      while (filled < length) {
        const read = fs.readSync(fd, view, at + filled, length - filled, offset + filled)
        if (read === 0) break
        filled += read
      }
      if (filled < length) return { failure: { index, seen: offset + filled } }
      if (last && fs.readSync(fd, probe, 0, 1, offset + length) > 0) return { failure: { index, seen: offset + length + 1 } }
    } catch (error) {
      return { failure: { index, code: error.code || String(error) } }
    } finally {
      if (fd !== undefined) fs.closeSync(fd)
    }
    at += length
  }
  return {}
}

// Hashes an upload's parts in order: each part's own digests, and the whole archive's as it goes.
// The whole archive's CRC32 is combined from the parts' (checksums.ts), not a second pass.
const uploads = new Map()
handlers.hashStart = ({ upload, plan }) => {
  uploads.set(upload, { plan, sha256: createHash('sha256'), md5: plan.wholeMd5 ? createHash('md5') : undefined })
}
handlers.hashPart = ({ upload, part }) => {
  const state = uploads.get(upload)
  state.sha256.update(part)
  state.md5?.update(part)
  return {
    crc32: crc32(part),
    md5: state.plan.partMd5 ? createHash('md5').update(part).digest() : undefined,
    sha256: state.plan.partSha256 ? createHash('sha256').update(part).digest('hex') : undefined
  }
}
handlers.hashEnd = ({ upload }) => {
  const state = uploads.get(upload)
  if (!state) return undefined
  uploads.delete(upload)
  return { sha256: state.sha256.digest('hex'), md5: state.md5 ? state.md5.digest('hex') : undefined }
}

parentPort.on('message', ({ id, kind, payload }) => {
  let answer
  try {
    answer = { id, value: handlers[kind](payload) }
  } catch (error) {
    answer = { id, error: error instanceof Error ? error.message : String(error) }
  }
  parentPort.postMessage(answer)
})
`
