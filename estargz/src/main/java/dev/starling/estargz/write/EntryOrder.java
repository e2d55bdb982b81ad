package dev.starling.estargz.write;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.Paths;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.tar.TarEntry;
import dev.starling.estargz.tar.TarHeader;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The order in which a lossy conversion writes entries (compat doc section 1.8): prioritized files
 * first, each preceded by its ancestors (and a hardlink by its target), then the landmark, then
 * everything else in input order. Old landmarks and TOCs are dropped; a repeated name keeps only its
 * last entry, at the last position.
 */
final class EntryOrder {
    /** A slot in the output: a tar entry, or the landmark (entry == null). */
    record Item(TarEntry entry, String landmark) {
        static Item of(TarEntry e) {
            return new Item(e, null);
        }
    }

    private EntryOrder() {
    }

    static List<Item> sort(List<TarEntry> input, List<String> prioritized) throws MissingPrioritizedFileException {
        return sort(input, prioritized, false);
    }

    /** With {@code skipAbsent}, paths the layer does not hold are skipped (a profile of the whole image). */
    static List<Item> sort(List<TarEntry> input, List<String> prioritized, boolean skipAbsent)
            throws MissingPrioritizedFileException {
        LinkedHashMap<String, TarEntry> remaining = new LinkedHashMap<>();
        for (TarEntry e : input) {
            String name = Paths.clean(e.header().name);
            if (name.equals(TocIndex.PREFETCH_LANDMARK) || name.equals(TocIndex.NO_PREFETCH_LANDMARK)
                    || name.equals(EStargzBlob.TOC_NAME)) {
                continue;
            }
            remaining.remove(name); // last wins, and takes the later position
            remaining.put(name, e);
        }
        List<Item> out = new ArrayList<>(remaining.size() + 1);
        if (skipAbsent) {
            prioritized = prioritized.stream().filter(p -> remaining.containsKey(Paths.clean(p))).toList();
        }
        if (prioritized.isEmpty()) {
            out.add(new Item(null, TocIndex.NO_PREFETCH_LANDMARK));
        } else {
            Map<String, Boolean> moved = new java.util.HashMap<>();
            for (String path : prioritized) {
                String name = Paths.clean(path);
                if (!remaining.containsKey(name) && !moved.containsKey(name)) {
                    throw new MissingPrioritizedFileException(path);
                }
                move(name, remaining, moved, out, 0);
            }
            out.add(new Item(null, TocIndex.PREFETCH_LANDMARK));
        }
        for (TarEntry e : remaining.values()) {
            out.add(Item.of(e));
        }
        return out;
    }

    private static void move(String name, Map<String, TarEntry> remaining, Map<String, Boolean> moved,
                             List<Item> out, int depth) {
        if (depth > 4096) {
            return; // hardlink cycles in the input: the TOC reader will report them
        }
        if (!name.isEmpty()) {
            int slash = name.lastIndexOf('/');
            move(slash < 0 ? "" : name.substring(0, slash), remaining, moved, out, depth + 1);
        }
        TarEntry e = remaining.get(name);
        if (e == null) {
            return;
        }
        if (e.header().type == TarHeader.HARDLINK) {
            moved.put(name, true); // guards the cycle before recursing
            move(Paths.clean(e.header().linkName), remaining, moved, out, depth + 1);
        }
        if (remaining.remove(name) != null) {
            moved.put(name, true);
            out.add(Item.of(e));
        }
    }
}
