package dev.starling.estargz;

import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/** Reads every chunk of every file in a blob and checks chunk and whole-file digests. */
public final class BlobVerifier {
    private BlobVerifier() {
    }

    /** Result of a full verification: what was checked and each problem, naming its entry. */
    public record Report(long files, long chunks, long bytes, List<String> problems) {
        public boolean ok() {
            return problems.isEmpty();
        }
    }

    public static Report verify(EStargzBlob blob) {
        TocIndex index = blob.index();
        List<String> problems = new ArrayList<>();
        long files = 0, chunks = 0, bytes = 0;
        for (int id = 0; id < index.nodeCount(); id++) {
            TocNode file = index.node(id);
            if (file.type() != EntryType.REG || file.chunkCount() == 0) {
                continue;
            }
            files++;
            MessageDigest whole = Digests.sha256();
            boolean intact = true;
            for (int i = 0; i < file.chunkCount(); i++) {
                Chunk chunk = index.chunk(file, i);
                chunks++;
                try {
                    byte[] data = blob.readChunk(chunk);
                    whole.update(data);
                    bytes += data.length;
                } catch (IOException e) {
                    problems.add(e.getMessage());
                    intact = false;
                }
            }
            byte[] expected = index.fileDigest(file);
            if (intact && expected != null && !MessageDigest.isEqual(expected, whole.digest())) {
                problems.add(Digests.quote(file.path()) + ": whole-file content does not match its digest "
                        + Digests.format(expected));
            }
        }
        return new Report(files, chunks, bytes, problems);
    }
}
