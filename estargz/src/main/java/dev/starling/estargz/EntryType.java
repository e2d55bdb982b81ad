package dev.starling.estargz;

/** The {@code type} of a TOC entry, with its JSON spelling. */
public enum EntryType {
    DIR("dir"), REG("reg"), SYMLINK("symlink"), HARDLINK("hardlink"), CHAR("char"), BLOCK("block"),
    FIFO("fifo"),
    /** A regular file's data past its first chunk. */
    CHUNK("chunk");

    public final String json;

    EntryType(String json) {
        this.json = json;
    }

    public static EntryType fromJson(String json) throws InvalidBlobException {
        for (EntryType t : values()) {
            if (t.json.equals(json)) {
                return t;
            }
        }
        throw new InvalidBlobException("unknown entry type " + Digests.quote(json));
    }
}
