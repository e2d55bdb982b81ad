package dev.starling.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CLI as a user runs it: {@code inspect} lists what {@code tar -tv} lists, {@code --toc-digest}
 * verifies and fails loudly naming the entry, {@code convert} prints the annotations a manifest needs.
 */
public class CliTest {
    static final Path VECTORS = Path.of("../estargz/src/test/resources/vectors/ctr-remote").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    public record Result(int code, String out, String err) {
    }

    public static synchronized Result starling(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = StarlingCli.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static List<Path[]> vectorBlobs() throws IOException {
        List<Path[]> out = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(VECTORS)) {
            for (Path d : dirs.filter(Files::isDirectory).sorted().toList()) {
                try (Stream<Path> files = Files.list(d)) {
                    files.filter(f -> f.toString().endsWith(".blob")).sorted().forEach(f -> out.add(new Path[] {f}));
                }
            }
        }
        return out;
    }

    /** The TOC digest ctr-remote annotated on a vector's layer. */
    static String annotatedTocDigest(Path blob) throws IOException {
        try (JsonParser p = new JsonFactory().createParser(blob.resolveSibling("expected.json").toFile())) {
            String digest = null;
            while (p.nextToken() != null) {
                if (p.currentToken() == JsonToken.VALUE_STRING) {
                    if ("containerd.io/snapshot/stargz/toc.digest".equals(p.currentName())) {
                        digest = p.getText();
                    }
                    if ("file".equals(p.currentName()) && p.getText().equals(blob.getFileName().toString())) {
                        return digest;
                    }
                }
            }
        }
        throw new AssertionError("no annotation for " + blob);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vectorBlobs")
    void inspectListsWhatTarListsAndVerifiesReferenceBlobs(Path blob) throws Exception {
        Result r = starling("inspect", "--toc-digest", annotatedTocDigest(blob), blob.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("OK:"), r.err());
        boolean zstd = blob.toString().contains("zstd");
        assertEquals(tarListing(blob, zstd), ourListing(r.out()));
    }

    @Test
    void inspectFailsNamingTheCorruptedEntry() throws Exception {
        Path tar = dir.resolve("in.tar");
        run(dir, "sh", "-c", "mkdir -p t/etc && printf 'root:x:0:0\\n%.0s' $(seq 200) > t/etc/passwd"
                + " && head -c 300000 /dev/urandom > t/random && tar -C t -cf in.tar .");
        Path blob = dir.resolve("out.esgz");
        Result convert = starling("convert", "--level", "0", "--json", tar.toString(), blob.toString());
        assertEquals(0, convert.code(), convert.err());
        String tocDigest = convert.out().replaceAll(".*\"tocDigest\":\"([^\"]+)\".*\\s*", "$1");
        assertEquals(0, starling("inspect", "--toc-digest", tocDigest, blob.toString()).code());

        byte[] bytes = Files.readAllBytes(blob);
        int at = indexOf(bytes, "root:x:0:0".getBytes());
        bytes[at] = 'R';
        Files.write(blob, bytes);
        Result bad = starling("inspect", "--toc-digest", tocDigest, blob.toString());
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("\"etc/passwd\""), bad.err());
        assertTrue(bad.err().contains("FAILED"), bad.err());

        Result wrongToc = starling("inspect", "--toc-digest", "sha256:" + "0".repeat(64), blob.toString());
        assertEquals(1, wrongToc.code());
        assertTrue(wrongToc.err().contains("TOC digest is"), wrongToc.err());
    }

    @Test
    void convertPrintsDigestsAndTheBlobListsLikeItsInput() throws Exception {
        run(dir, "sh", "-c", "mkdir -p t/a/b && echo hi > t/a/b/c && ln -s c t/a/b/l && ln t/a/b/c t/a/h"
                + " && printf 'a/b/c\\n' > prio && tar -C t -czf in.tar.gz .");
        Path blob = dir.resolve("out.esgz");
        Result r = starling("convert", "--prioritize", dir.resolve("prio").toString(), "--chunk-size", "64k",
                dir.resolve("in.tar.gz").toString(), blob.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().matches("(?s)toc digest: +sha256:[0-9a-f]{64}\ndiff id: +sha256:[0-9a-f]{64}\n.*"), r.out());
        Result listing = starling("inspect", blob.toString());
        assertEquals(0, listing.code(), listing.err());
        assertTrue(listing.out().contains("reg 0000 0 0 1 .prefetch.landmark\n"), listing.out());
        assertTrue(listing.out().contains("hardlink "), listing.out());
        assertTrue(listing.out().contains(" a/h -> a/b/c\n"), listing.out());
        assertEquals(tarListing(blob, false), ourListing(listing.out()));
    }

    @Test
    void badInputGivesAClearErrorAndExitCode() throws Exception {
        Files.writeString(dir.resolve("notes.txt"), "not a tar ".repeat(100));
        Result r = starling("convert", dir.resolve("notes.txt").toString(), dir.resolve("o").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("starling: not a tar archive"), r.err());
        Result missing = starling("inspect", dir.resolve("nope").toString());
        assertEquals(1, missing.code());
        assertTrue(missing.err().contains("nope"), missing.err());
        Result notBlob = starling("inspect", dir.resolve("notes.txt").toString());
        assertEquals(1, notBlob.code());
        assertTrue(notBlob.err().contains("no eStargz footer"), notBlob.err());
    }

    /** tar -tv as (type, mode, uid/gid, size, name, target) lines, minus the TOC file itself. */
    static TreeSet<String> tarListing(Path blob, boolean zstd) throws Exception {
        String out = run(blob.getParent(), "tar", zstd ? "--zstd" : "-z", "--numeric-owner", "--quoting-style=literal",
                "-tvf", blob.toString());
        TreeSet<String> lines = new TreeSet<>();
        for (String line : out.split("\n")) {
            if (line.isBlank() || line.startsWith("tar: ")) {
                continue;
            }
            String[] f = line.split(" +", 6);
            String perms = f[0];
            String type = switch (perms.charAt(0)) {
                case 'd' -> "dir";
                case 'l' -> "symlink";
                case 'h' -> "hardlink";
                case 'c' -> "char";
                case 'b' -> "block";
                case 'p' -> "fifo";
                default -> "reg";
            };
            String[] owner = f[1].split("/");
            String size = type.equals("reg") ? f[2] : "0";
            String rest = f[5];
            String name = rest, target = "";
            if (type.equals("symlink")) {
                name = rest.substring(0, rest.indexOf(" -> "));
                target = rest.substring(rest.indexOf(" -> ") + 4);
            } else if (type.equals("hardlink")) {
                name = rest.substring(0, rest.indexOf(" link to "));
                target = clean(rest.substring(rest.indexOf(" link to ") + 9));
            }
            if (clean(name).equals("stargz.index.json")) {
                continue;
            }
            lines.add(String.join(" ", type, String.format("%04o", permissions(perms)), owner[0], owner[1], size,
                    clean(name)) + (target.isEmpty() ? "" : " -> " + target));
        }
        return lines;
    }

    static TreeSet<String> ourListing(String out) {
        TreeSet<String> lines = new TreeSet<>();
        for (String line : out.split("\n")) {
            if (!line.isBlank()) {
                String[] f = line.split(" ", 6);
                String size = f[0].equals("reg") ? f[4] : "0";
                lines.add(String.join(" ", f[0], f[1], f[2], f[3], size, f[5]));
            }
        }
        return lines;
    }

    static String clean(String name) {
        String c = dev.starling.estargz.Paths.clean(name);
        return c.isEmpty() ? "." : c;
    }

    static int permissions(String perms) {
        int mode = 0;
        String bits = perms.substring(1);
        for (int i = 0; i < 9; i++) {
            char ch = bits.charAt(i);
            boolean set = ch != '-' && ch != 'S' && ch != 'T';
            if (set) {
                mode |= 1 << (8 - i);
            }
        }
        if (bits.charAt(2) == 's' || bits.charAt(2) == 'S') {
            mode |= 04000;
        }
        if (bits.charAt(5) == 's' || bits.charAt(5) == 'S') {
            mode |= 02000;
        }
        if (bits.charAt(8) == 't' || bits.charAt(8) == 'T') {
            mode |= 01000;
        }
        return mode;
    }

    static String run(Path dir, String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        if (p.exitValue() != 0 && !(cmd[0].equals("tar") && p.exitValue() == 2 && out.contains("EOF"))) {
            throw new AssertionError(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i <= hay.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }

    /** Every error names what was wrong and what to do: the cases a new user hit, each with the words it must say. */
    static Stream<org.junit.jupiter.params.provider.Arguments> badCommandLines() {
        return Stream.of(
                args("no such file; inspect takes a local blob, not an image reference", "inspect", "127.0.0.1:5000/app:v1-esgz"),
                args("is a directory; inspect takes", "inspect", "@DIR"),
                args("--prioritize @DIR/nosuch.txt: no such file", "convert", "--prioritize", "@DIR/nosuch.txt", "@TAR", "@DIR/o.esgz"),
                args("the chunk size must be 1 byte to 64 MiB", "convert", "--chunk-size", "128M", "@TAR", "@DIR/o.esgz"),
                args("the chunk size must be 1 byte to 64 MiB", "convert", "--chunk-size", "0", "@TAR", "@DIR/o.esgz"),
                args("threads must be 1 or more", "convert", "--threads", "-3", "@TAR", "@DIR/o.esgz"),
                args("looks like an image reference, but converting the local layer", "convert", "@TAR", "127.0.0.1:39031/nu/x:y"),
                args("the output's directory does not exist", "convert", "@TAR", "/nonexistentdir/x.esgz"),
                args("out.esgz is not an image reference", "convert", "127.0.0.1:1/app:v1", "out.esgz"),
                args("no such file, and not an image reference", "convert", "@DIR/missing.tar.gz", "@DIR/o.esgz"),
                args("--insecure-registry takes HOST[:PORT]", "convert", "--insecure-registry", "http://x", "127.0.0.1:1/a:b", "127.0.0.1:1/a:c"),
                args("--cache-size must be more than 0", "mount", "--cache-size", "0", "127.0.0.1:1/a:b", "@DIR/t"),
                args("the fetch unit must be 1 byte to 256 MiB", "mount", "--fetch-unit", "0", "127.0.0.1:1/a:b", "@DIR/t"),
                args("is not a directory; mount needs a directory", "mount", "127.0.0.1:1/a:b", "@TAR"));
    }

    private static org.junit.jupiter.params.provider.Arguments args(String said, String... argv) {
        return org.junit.jupiter.params.provider.Arguments.of(said, argv);
    }

    @ParameterizedTest
    @MethodSource("badCommandLines")
    void badCommandLinesSayWhatIsWrongAndCreateNothing(String said, String[] argv) throws Exception {
        Path tar = dir.resolve("in.tar");
        Files.write(tar, new byte[1024]);
        String[] real = java.util.Arrays.stream(argv).map(a -> a.replace("@DIR", dir.toString()).replace("@TAR", tar.toString()))
                .toArray(String[]::new);
        Result r = starling(real);
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains(said.replace("@DIR", dir.toString())), "expected \"" + said + "\" in: " + r.err());
        assertTrue(!Files.exists(Path.of("127.0.0.1:39031")) && !Files.exists(Path.of("/nonexistentdir")),
                "nothing was written where the user did not mean");
        assertTrue(!Files.exists(dir.resolve("o.esgz")));
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"convert", "mount", "inspect", "umount", "demo"})
    void everyCommandPrintsItsVersion(String command) {
        Result r = starling(command, "-V");
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("starling "), r.out());
    }

    @Test
    void mountWithoutTheRightToMountSaysSoBeforeTrying() throws Exception {
        // root, but without CAP_SYS_ADMIN (as an unprivileged user, or a container without it)
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder("setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", java,
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                StarlingCli.class.getName(), "mount", "127.0.0.1:1/a:b", dir.resolve("t").toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), out);
        assertTrue(out.contains("mounting needs root (or CAP_SYS_ADMIN and access to /dev/fuse)"), out);
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"/usr/lib/jvm/java-17-openjdk-amd64", "/nonexistent/jdk"})
    void aStarlingJavaHomeThatIsNoJdk25IsRefusedByName(String home) throws Exception {
        Path script = Path.of("../bin/starling").toAbsolutePath().normalize();
        ProcessBuilder pb = new ProcessBuilder(script.toString(), "--version").redirectErrorStream(true);
        pb.environment().put("STARLING_JAVA_HOME", home);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertTrue(p.exitValue() != 0, out);
        assertTrue(out.contains("STARLING_JAVA_HOME=" + home), "names the variable and its value: " + out);
    }

    @Test
    void joinDnsResolvesANameToPeersAtThisNodesPort() throws Exception {
        List<java.net.InetSocketAddress> peers = DaemonCommand.resolve("localhost", 7400);
        assertTrue(peers.stream().anyMatch(a -> a.getAddress().isLoopbackAddress() && a.getPort() == 7400), peers.toString());
    }

    @Test
    void daemonOptionsAreCheckedBeforeAnythingStarts() {
        Result half = starling("daemon", "--tls-keystore", "x.p12", "--socket", dir.resolve("s").toString());
        assertEquals(1, half.code());
        assertTrue(half.err().contains("TLS needs all of --tls-keystore, --tls-truststore and --tls-password-file"), half.err());
        Result port = starling("daemon", "--peer-listen", "127.0.0.1:99999");
        assertTrue(port.err().contains("--peer-listen takes HOST:PORT with a port 0-65535"), port.err());
    }

    @Test
    void aDaemonConfigFileSetsWhatTheCommandLineDoesNotAndUnknownKeysAreRefused() throws Exception {
        Path yaml = dir.resolve("starling.yaml");
        Files.writeString(yaml, "peer-listen: 127.0.0.1:99999\njoin: [127.0.0.1:7400, 127.0.0.1:7402]\ncluster-id: prod\n");
        Result fromFile = starling("daemon", "--config", yaml.toString());
        assertTrue(fromFile.err().contains("--peer-listen takes HOST:PORT with a port 0-65535, not \"127.0.0.1:99999\""),
                "the file's peer-listen was used: " + fromFile.err());
        Result overridden = starling("daemon", "--config", yaml.toString(), "--peer-listen", "127.0.0.1:70000");
        assertTrue(overridden.err().contains("not \"127.0.0.1:70000\""), "the command line wins: " + overridden.err());
        Files.writeString(yaml, "store: /var/lib/starling/store\nstore-auth-file: /var/lib/starling/c.json\n");
        Result noStore = starling("daemon", "--config", yaml.toString(), "--no-store", "--peer-listen", "127.0.0.1:70000");
        assertTrue(noStore.err().contains("not \"127.0.0.1:70000\"") && !noStore.err().contains("contradict"),
                "--no-store on the command line turns off the file's store (the containerd unit with the shared daemon.yaml): "
                        + noStore.err());
        Result both = starling("daemon", "--store", dir.resolve("st").toString(), "--no-store");
        assertTrue(both.err().contains("--store and --no-store contradict each other"), "on one command line they do: " + both.err());
        Files.writeString(yaml, "peer-lisen: 127.0.0.1:7400\n");
        Result typo = starling("daemon", "--config", yaml.toString());
        assertTrue(typo.err().contains("unknown key \"peer-lisen\""), typo.err());
    }
}
