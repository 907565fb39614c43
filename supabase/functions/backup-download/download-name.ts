// The name a browser saves the backup under: the last part of its key, in a Content-Disposition
// that S3 answers with (response-content-disposition). RFC 6266: a quoted ASCII `filename` for
// every client, and, for a name that is not plain ASCII, `filename*` (RFC 5987) with its UTF-8.
// It imports nothing: Node's tests import it as it is.

/** `backups/2026/01/02/backup-20260102T030405Z.zip` → `backup-20260102T030405Z.zip`. */
export function fileNameOf(s3Key: string): string {
  return s3Key.split('/').filter(Boolean).pop() ?? 'backup'
}

export function contentDisposition(fileName: string): string {
  // Quotes, backslashes, control and non-ASCII characters have no safe place in the quoted form.
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_')
  return ascii === fileName
    ? `attachment; filename="${fileName}"`
    : `attachment; filename="${ascii}"; filename*=UTF-8''${encodeRfc5987(fileName)}`
}

/** RFC 5987's value-chars: percent-encoded UTF-8 but for attr-chars (encodeURIComponent spares ' ( ) *, which are not). */
function encodeRfc5987(text: string): string {
  return encodeURIComponent(text).replace(/['()*]/g, char => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
}
