/** The version of the JSON manifests the archive's parts carry (database/, storage/) that this action reads and writes. */
export const MANIFEST_VERSION = 1

/**
 * A part's manifest read back: JSON, and the version this action knows. The caller checks the
 * fields it relies on; the messages name the manifest's path in the archive.
 */
export function readManifestJson<T extends { manifestVersion: number }>(text: string, path: string): Partial<T> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error(`${path} is not JSON.`)
  }
  const manifest = parsed as Partial<T> | null
  if (manifest?.manifestVersion !== MANIFEST_VERSION)
    throw new Error(`${path} has manifestVersion ${String(manifest?.manifestVersion)}; this version reads ${MANIFEST_VERSION}.`)
  return manifest
}
