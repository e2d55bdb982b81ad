package dev.starling.estargz;

import static dev.starling.estargz.Layers.layer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.write.ConvertOptions;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Ports {@code TestSort} (compat doc 6.2): the order a lossy conversion writes entries in. */
class EntryOrderTest {

    private static List<String> order(Layers l, String... prioritized) throws Exception {
        Layers.Converted c = l.convert(ConvertOptions.defaults().withPrioritizedFiles(List.of(prioritized)));
        return EStargzBlob.readToc(RangeReader.of(c.blob()), ReaderLimits.DEFAULT).entries().stream()
                .filter(e -> e.type() != EntryType.CHUNK).map(TocEntry::name).toList();
    }

    private static Layers sample() {
        return layer().dir("foo").file("foo/bar.txt", "bar").dir("baz").dir("baz/qux").file("baz/qux/a.txt", "a")
                .file("top.txt", "top").file("foo/baz.txt", "baz");
    }

    @Test
    void withoutAListTheNoPrefetchLandmarkComesFirst() throws Exception {
        assertEquals(List.of(".no.prefetch.landmark", "foo/", "foo/bar.txt", "baz/", "baz/qux/", "baz/qux/a.txt",
                "top.txt", "foo/baz.txt"), order(sample()));
    }

    @Test
    void identicalOrderKeepsEverythingAndAddsTheLandmark() throws Exception {
        assertEquals(List.of("foo/", "foo/bar.txt", "baz/", "baz/qux/", "baz/qux/a.txt", "top.txt", "foo/baz.txt",
                        ".prefetch.landmark"),
                order(sample(), "foo/", "foo/bar.txt", "baz/", "baz/qux/", "baz/qux/a.txt", "top.txt", "foo/baz.txt"));
    }

    @Test
    void shuffledFilesPullTheirAncestorsForward() throws Exception {
        assertEquals(List.of("baz/", "baz/qux/", "baz/qux/a.txt", "top.txt", ".prefetch.landmark", "foo/",
                "foo/bar.txt", "foo/baz.txt"), order(sample(), "baz/qux/a.txt", "/top.txt"));
    }

    @Test
    void hardlinkInTheListPullsItsTargetForward() throws Exception {
        Layers l = layer().file("target", "t").file("other", "o").hardlink("link", "target");
        assertEquals(List.of("target", "link", ".prefetch.landmark", "other"), order(l, "link"));
    }

    @Test
    void hardlinkNotInTheListStaysInPlace() throws Exception {
        Layers l = layer().file("target", "t").file("other", "o").hardlink("link", "target");
        assertEquals(List.of("other", ".prefetch.landmark", "target", "link"), order(l, "other"));
    }

    @Test
    void existingLandmarksAreReplaced() throws Exception {
        Layers l = layer().file(".prefetch.landmark", new byte[] {0x0f}).file("a", "a")
                .file(".no.prefetch.landmark", new byte[] {0x0f}).file("b", "b");
        assertEquals(List.of(".no.prefetch.landmark", "a", "b"), order(l));
        assertEquals(List.of("b", ".prefetch.landmark", "a"), order(l, "b"));
    }

    @Test
    void missingPrioritizedFileIsAnError() {
        InvalidBlobException e = assertThrows(InvalidBlobException.class, () -> order(sample(), "nope.txt"));
        assertTrue(e.getMessage().contains("nope.txt"), e.getMessage());
    }

    @Test
    void duplicateNamesKeepTheLastEntryAtTheLastPosition() throws Exception {
        Layers l = layer().file("a", "first").file("b", "b").file("a", "second");
        assertEquals(List.of(".no.prefetch.landmark", "b", "a"), order(l));
        EStargzBlob blob = l.convert(ConvertOptions.defaults()).open();
        assertEquals("second", new String(blob.read(blob.index().lookup("a"), 0, 10)));
    }

    @Test
    void rootEntryOfPrefixedArchivesComesFirst() throws Exception {
        Layers l = layer().raw(root("./"), new byte[0]).prefix("./").file("a", "a").file("b", "b");
        assertEquals(List.of("./", "./b", ".prefetch.landmark", "./a"), order(l, "b"));
    }

    @Test
    void longNamesSurviveReordering() throws Exception {
        String dir = "d".repeat(120) + "/";
        String file = dir + "f".repeat(150);
        Layers l = layer().file("short", "s").dir(dir).file(file, "long");
        assertEquals(List.of(dir, file, ".prefetch.landmark", "short"), order(l, file));
        EStargzBlob blob = l.convert(ConvertOptions.defaults()).open();
        assertEquals("long", new String(blob.read(blob.index().lookup(file), 0, 10)));
    }

    @Test
    void prioritizedAreaEndsAtTheLandmarkMember() throws Exception {
        Layers l = sample();
        Layers.Converted c = l.convert(ConvertOptions.defaults().withPrioritizedFiles(List.of("top.txt")));
        EStargzBlob blob = c.open();
        TocNode top = blob.index().lookup("top.txt");
        long end = blob.index().prioritizedEnd();
        assertTrue(end > blob.index().chunk(top, 0).compressedOffset(), "top.txt lies inside [0, landmark)");
        TocNode bar = blob.index().lookup("foo/bar.txt");
        assertTrue(blob.index().chunk(bar, 0).compressedOffset() > end, "the rest lies after it");
    }

    private static dev.starling.estargz.tar.TarHeader root(String name) {
        var h = new dev.starling.estargz.tar.TarHeader();
        h.name = name;
        h.type = dev.starling.estargz.tar.TarHeader.DIR;
        h.mode = 0755;
        return h;
    }
}
