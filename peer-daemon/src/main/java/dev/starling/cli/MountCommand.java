package dev.starling.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.daemon.ControlSocket;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fuse.MountOptions;
import dev.starling.mount.ImageMount;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code starling mount IMAGE DIR}: the image's files at DIR at once, bytes fetched when read. */
@Command(name = "mount", mixinStandardHelpOptions = true,
        description = {"Mount an eStargz image lazily at DIR (read-only) and keep serving it until Ctrl-C",
                "or `starling umount DIR`. Needs root (FUSE and overlayfs)."})
final class MountCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Parameters(index = "0", paramLabel = "IMAGE", description = "an eStargz image (see `starling convert`)")
    String image;

    @Parameters(index = "1", paramLabel = "DIR", description = "where the image's root file system appears")
    Path target;

    @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
            description = "the platform to mount: picks it from a multi-platform image, and is checked against a "
                    + "single-platform one (default: linux/amd64 from an index; a single-platform image as it is)")
    String platform;

    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "disk tier: verified chunks by blob and digest, kept across restarts (default: ${DEFAULT-VALUE})")
    Path cacheDir = Path.of("/var/lib/starling/chunks");

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "disk tier bound; least recently used chunks go first (default: half the space the "
                    + "cache directory's file system has)")
    Long cacheSize;

    @Option(names = "--allow-setuid-and-devices",
            description = "mount without nosuid,nodev: setuid binaries, file capabilities and device nodes of the image "
                    + "then act on this host for any local user; only for images trusted as much as the host")
    boolean allowSetuidAndDevices;

    @Option(names = "--prefetch", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "fetch each layer's prioritized files (those before its .prefetch.landmark) right after "
                    + "mounting (default: on; --no-prefetch turns it off)")
    boolean prefetch = true;

    @Option(names = "--no-background-fetch",
            description = "do not fetch the rest of each layer in the background (by default the node fetches "
                    + "everything at low priority, so it stops needing the registry)")
    boolean noBackgroundFetch;

    @Option(names = "--background-rate", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "cap on background fetching, bytes per second; 0 for none (default: 100MiB)")
    long backgroundRate = FetchOptions.DEFAULTS.backgroundBytesPerSecond();

    @Option(names = "--fetch-unit", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "at most this much per Range request when adjacent missing files are fetched together "
                    + "(default: 2MiB)")
    long fetchUnit = FetchOptions.DEFAULTS.fetchUnit();

    @Option(names = "--read-ahead", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "how far ahead of a sequential reader chunks are fetched in parallel; 0 for off (default: 32MiB)")
    long readAhead = MountOptions.DEFAULTS.readAheadBytes();

    @Option(names = "--socket", paramLabel = "PATH",
            description = "mount through the node daemon at this control socket, sharing its chunks and peers, and "
                    + "return once the image is ready (default: the daemon at " + "/run/starling/starling.sock"
                    + " when one answers there, else a mount of its own)")
    Path socket;

    @Mixin
    RegistryOptions registry = new RegistryOptions();

    FetchOptions fetchOptions() {
        return FetchOptions.DEFAULTS.withPrefetch(prefetch).withBackgroundFetch(!noBackgroundFetch)
                .withBackgroundBytesPerSecond(backgroundRate).withFetchUnit(fetchUnit);
    }

    @Override
    public Integer call() throws Exception {
        ImageReference ref = ImageReference.parse(image);
        Path daemon = ControlSocket.daemonFor(socket);
        if (daemon != null) {
            ObjectNode request = JSON.createObjectNode().put("op", "mount").put("image", ref.toString())
                    .put("target", target.toAbsolutePath().toString());
            if (platform != null) {
                request.put("platform", platform);
            }
            JsonNode answer = ControlSocket.call(daemon, request);
            if (!answer.path("ok").asBoolean()) {
                throw new java.io.IOException("the daemon at " + daemon + " could not mount " + ref + ": "
                        + answer.path("error").asText());
            }
            System.out.printf("mounted %s at %s through the daemon at %s: %d layer(s), ready in %d ms%n", ref,
                    answer.path("target").asText(), daemon, answer.path("layers").asInt(), answer.path("readyMillis").asLong());
            return 0;
        }
        Descriptor.Platform wanted = platform == null ? null : Descriptor.Platform.parse(platform);
        FetchOptions fetch = fetchOptions();
        MountOptions mountOptions = MountOptions.DEFAULTS.withReadAheadBytes(readAhead)
                .withSetuidAndDevices(allowSetuidAndDevices);
        if (cacheSize != null && cacheSize <= 0) {
            throw new IllegalArgumentException("--cache-size must be more than 0, not " + cacheSize);
        }
        if (Files.exists(target) && !Files.isDirectory(target) && !dev.starling.fuse.MountTable.isDead(target)) {
            throw new IllegalArgumentException(target + " is not a directory; mount needs a directory to mount the "
                    + "image on (it is created when missing)");
        }
        Privileges.requireMountPrivileges();
        long size = cacheSize != null ? cacheSize : DiskChunkCache.defaultSize(cacheDir);
        if (cacheSize == null) {
            System.out.println("disk cache: " + Sizes.human(size) + " at " + cacheDir
                    + " (half the space its file system has; --cache-size to change)");
        }
        Path work = Files.createTempDirectory("starling-mount-");
        long t0 = System.nanoTime();
        CountDownLatch done = new CountDownLatch(1);
        try (RegistryClient client = new RegistryClient(registry.settings())) {
            ImageMount mount = ImageMount.mount(client, ref, wanted, target, work, new DiskChunkCache(cacheDir, size),
                    fetch, mountOptions);
            System.out.printf("mounted %s at %s: %d layer(s), ready in %.0f ms after fetching %s%n", ref, target,
                    mount.layerCount(), (System.nanoTime() - t0) / 1e6, Sizes.human(mount.bytesAtReady()));
            System.out.println("serving; each layer's state is in " + target.resolve(dev.starling.fuse.StateFile.DIRECTORY)
                    + "/; Ctrl-C or `starling umount " + target + "` to stop");
            System.out.flush();
            AtomicBoolean finished = new AtomicBoolean();
            Runnable finish = () -> {
                if (finished.compareAndSet(false, true)) {
                    try {
                        mount.close();
                    } catch (Exception e) {
                        System.err.println("starling: unmounting " + target + ": " + StarlingCli.message(e));
                    }
                    System.out.printf("unmounted %s; fetched %s from the registry in %d request(s)%n", target,
                            Sizes.human(mount.bytesFetched()), mount.requests());
                    System.out.flush();
                    try {
                        dev.starling.fuse.MountTable.deleteTree(work);
                    } catch (java.io.IOException ignored) {
                        // a layer dir still busy is removed by the next tmp clean-up
                    }
                }
            };
            // Ctrl-C and SIGTERM run the same clean-up as `starling umount`: mounts, work dir, summary.
            Thread hook = new Thread(() -> {
                done.countDown();
                finish.run();
            }, "starling-unmount");
            Runtime.getRuntime().addShutdownHook(hook);
            while (!done.await(500, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                if (!mount.mounted()) {
                    break; // `starling umount DIR` (or umount) took the overlay away
                }
            }
            if (done.getCount() > 0) {
                Runtime.getRuntime().removeShutdownHook(hook);
                finish.run();
            }
            return 0;
        } finally {
            try {
                dev.starling.fuse.MountTable.deleteTree(work);
            } catch (java.io.IOException ignored) {
                // a layer dir still busy is removed by the next tmp clean-up
            }
        }
    }
}
