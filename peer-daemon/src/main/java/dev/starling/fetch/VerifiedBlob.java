package dev.starling.fetch;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;

/** A blob whose TOC this node verified against its digest, and the reader of its bytes in the registry. */
public record VerifiedBlob(EStargzBlob blob, RangeReader remote) {
}
