// A plain BPE model over token strings (byte-level, or SentencePiece-style characters): enough to
// reason about which tokens a merge table can produce. (The runtime encodes through @huggingface/tokenizers.)

export interface ParentVocab {
  /** Token string → id (specials excluded). */
  idOf: Map<string, number>;
  /** id → byte-level token string. */
  tokenOf: Map<number, string>;
  /** Merge rank → [left, right] token strings; the merged token is left + right. */
  merges: [string, string][];
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
  for (const [left, right] of merges) {
    if (!idOf.has(left + right) || !idOf.has(left) || !idOf.has(right)) {
      throw new Error(`merge "${left} ${right}" refers to a token missing from the vocabulary`);
    }
  }
  return { idOf, tokenOf, merges, specials };
}

/**
 * BPE over a single pre-token, given as its characters: repeatedly apply the best-ranked merge
 * (the leftmost of equal rank). `formed`, when given, receives every token a merge creates on the way.
 */
export function bpeEncode(chars: string[], rankOf: Map<string, number>, idOf: Map<string, number>, formed?: string[]): number[] {
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
    formed?.push(parts[best]);
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
