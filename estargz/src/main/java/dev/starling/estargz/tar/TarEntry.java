package dev.starling.estargz.tar;

/**
 * One tar entry located in its archive.
 *
 * @param header        metadata with PAX and GNU extensions applied
 * @param headerOffset  first byte of the entry's header blocks (extension headers included)
 * @param payloadOffset first byte of the file data (= end of the header blocks)
 * @param end           first byte after the data's padding: where the next entry starts
 */
public record TarEntry(TarHeader header, long headerOffset, long payloadOffset, long end) {
}
