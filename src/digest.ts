// manifest.json's sha256 of a model folder's files: computing one, and checking a file against it.

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** manifest.json's "files": each file's size and sha256, by path in the folder. */
export type ManifestFiles = Record<string, { sha256?: string; bytes?: number }>;

/** A file whose sha256 differs from manifest.json's is corrupt (or replaced): say so, naming it. */
export async function checkDigest(path: string, bytes: Uint8Array, manifest: { files?: ManifestFiles }): Promise<void> {
  const expected = manifest.files?.[path]?.sha256;
  if (!expected) return;
  const hex = await sha256Hex(bytes);
  if (hex !== expected) throw new Error(`${path}: sha256 ${hex} does not match manifest.json's ${expected} (corrupt or partial download?)`);
}
