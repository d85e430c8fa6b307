// A plain byte-level BPE model over byte-level token strings: enough to reason about which
// tokens a merge table can produce. (The runtime encodes through @huggingface/tokenizers.)

export interface ParentVocab {
  /** Byte-level token string → id (specials excluded). */
  idOf: Map<string, number>;
  /** id → byte-level token string. */
  tokenOf: Map<number, string>;
  /** Merge rank → [left, right] token strings; the merged token is left + right. */
  merges: [string, string][];
  /** Merged id → [left id, right id] of the merge that creates it. */
  madeFrom: Map<number, [number, number]>;
  specials: { id: number; content: string }[];
}

export function readVocab(json: {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens?: { id: number; content: string }[];
}): ParentVocab {
  const specials = (json.added_tokens ?? []).map((a) => ({ id: a.id, content: a.content }));
  const specialIds = new Set(specials.map((s) => s.id));
  const idOf = new Map<string, number>();
  const tokenOf = new Map<number, string>();
  for (const [token, id] of Object.entries(json.model.vocab)) {
    if (specialIds.has(id)) continue;
    idOf.set(token, id);
    tokenOf.set(id, token);
  }
  const merges = json.model.merges.map((m) => (typeof m === "string" ? (m.split(" ") as [string, string]) : m));
  const madeFrom = new Map<number, [number, number]>();
  for (const [left, right] of merges) {
    const merged = idOf.get(left + right);
    const l = idOf.get(left);
    const r = idOf.get(right);
    if (merged === undefined || l === undefined || r === undefined) {
      throw new Error(`merge "${left} ${right}" refers to a token missing from the vocabulary`);
    }
    if (!madeFrom.has(merged)) madeFrom.set(merged, [l, r]);
  }
  return { idOf, tokenOf, merges, madeFrom, specials };
}

/** BPE over a single pre-token, given as byte-level characters: repeatedly apply the best-ranked merge. */
export function bpeEncode(chars: string[], rankOf: Map<string, number>, idOf: Map<string, number>): number[] {
  const parts = [...chars];
  while (parts.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i < parts.length - 1; i++) {
      const rank = rankOf.get(parts[i] + " " + parts[i + 1]);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  return parts.map((p) => {
    const id = idOf.get(p);
    if (id === undefined) throw new Error(`no token for ${JSON.stringify(p)}`);
    return id;
  });
}

export function mergeRanks(merges: [string, string][]): Map<string, number> {
  return new Map(merges.map(([l, r], i) => [`${l} ${r}`, i]));
}
