package dev.starling.estargz;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A directory tree as text, one line per path: type and mode, owner, size and mtime, device
 * numbers, link target, content hash, user xattrs, and which earlier path shares its inode. Two
 * trees are the same file system when their descriptions are equal.
 */
public final class TreeDescription {
    private TreeDescription() {
    }

    public static List<Path> walk(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(p -> !p.equals(root)).sorted().toList();
        }
    }

    /** @param directoryTimes compare directory mtimes too (false when an extraction touched them) */
    public static String of(Path root, boolean directoryTimes) throws IOException {
        StringBuilder b = new StringBuilder();
        Map<Object, String> firstNameOfInode = new HashMap<>();
        for (Path p : walk(root)) {
            String rel = root.relativize(p).toString();
            Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,size,lastModifiedTime,rdev,ino,nlink",
                    LinkOption.NOFOLLOW_LINKS);
            int mode = (int) a.get("mode");
            boolean dir = (mode & 0170000) == 0040000;
            b.append(rel).append(' ').append(Integer.toOctalString(mode)).append(' ')
                    .append(a.get("uid")).append(':').append(a.get("gid"));
            if (!dir || directoryTimes) {
                b.append(" t=").append(((FileTime) a.get("lastModifiedTime")).toMillis() / 1000);
            }
            if (!dir) {
                b.append(" s=").append(a.get("size"));
            }
            int type = mode & 0170000;
            if (type == 0020000 || type == 0060000) {
                long rdev = (long) a.get("rdev");
                b.append(" dev=").append((rdev >> 8) & 0xfff).append(',').append((rdev & 0xff) | ((rdev >> 12) & 0xfff00));
            }
            if (!dir && (int) a.get("nlink") > 1) {
                String first = firstNameOfInode.putIfAbsent(a.get("ino"), rel);
                if (first != null) {
                    b.append(" same-inode-as=").append(first);
                }
            }
            if (Files.isSymbolicLink(p)) {
                b.append(" -> ").append(Files.readSymbolicLink(p));
            } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                byte[] data = Files.readAllBytes(p);
                b.append(' ').append(Digests.format(Digests.sha256(data, 0, data.length)));
            }
            if (dir || Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                UserDefinedFileAttributeView view = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class);
                Map<String, String> xattrs = new TreeMap<>();
                for (String name : view.list()) {
                    ByteBuffer buf = ByteBuffer.allocate(view.size(name));
                    view.read(name, buf);
                    xattrs.put(name, java.util.HexFormat.of().formatHex(buf.array()));
                }
                if (!xattrs.isEmpty()) {
                    b.append(" xattrs=").append(xattrs);
                }
            }
            b.append('\n');
        }
        return b.toString();
    }
}
