package dev.starling.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import dev.starling.containerd.snapshots.CommitSnapshotRequest;
import dev.starling.containerd.snapshots.Info;
import dev.starling.containerd.snapshots.Kind;
import dev.starling.containerd.snapshots.ListSnapshotsRequest;
import dev.starling.containerd.snapshots.MountsRequest;
import dev.starling.containerd.snapshots.PrepareSnapshotRequest;
import dev.starling.containerd.snapshots.RemoveSnapshotRequest;
import dev.starling.containerd.snapshots.SnapshotsGrpc;
import dev.starling.containerd.snapshots.StatSnapshotRequest;
import dev.starling.containerd.snapshots.UpdateSnapshotRequest;
import dev.starling.containerd.snapshots.UsageRequest;
import dev.starling.containerd.snapshots.UsageResponse;
import dev.starling.containerd.snapshots.ViewSnapshotRequest;
import dev.starling.containerd.types.Mount;
import dev.starling.daemon.DaemonConfig;
import dev.starling.daemon.DaemonProcess;
import dev.starling.estargz.Processes;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The snapshots service of a real daemon process over its unix socket, with containerd's own
 * snapshotter test expectations (its snapshots/testsuite) that apply: prepare/commit/view chains
 * mounted for real, removing a parent with children refused, usage of an active snapshot, stat and
 * label updates, filters, the error codes containerd's errdefs expect, and metadata that survives
 * a kill -9.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class SnapshotServiceTest {
    @TempDir
    Path dir;

    private DaemonProcess daemon;
    private List<String> options;
    private EpollEventLoopGroup group;
    private ManagedChannel channel;
    private SnapshotsGrpc.SnapshotsBlockingStub snapshots;
    private final List<Path> mounted = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        Path socket = dir.resolve("sn.sock");
        options = List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store",
                "--containerd-socket", socket.toString(), "--cache-size", "64M");
        daemon = DaemonProcess.start(dir, "node", options).awaitReady();
        group = new EpollEventLoopGroup(1);
        channel = UnixGrpc.channel(socket, group);
        snapshots = SnapshotsGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        for (Path m : mounted.reversed()) {
            Processes.runForResult(dir, "umount", m.toString());
        }
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        daemon.close();
    }

    private List<Mount> prepare(String key, String parent, Map<String, String> labels) {
        return snapshots.prepare(PrepareSnapshotRequest.newBuilder().setSnapshotter("starling").setKey(key)
                .setParent(parent).putAllLabels(labels).build()).getMountsList();
    }

    private void commit(String name, String key) {
        snapshots.commit(CommitSnapshotRequest.newBuilder().setName(name).setKey(key).build());
    }

    private Info stat(String key) {
        return snapshots.stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo();
    }

    /** Mounts what the snapshotter answered, as containerd would. */
    private Path mount(List<Mount> mounts, String name) throws Exception {
        Path target = Files.createDirectories(dir.resolve("mnt-" + name));
        assertEquals(1, mounts.size(), mounts.toString());
        Mount m = mounts.getFirst();
        String options = String.join(",", m.getOptionsList());
        Processes.Result r = m.getType().equals("bind")
                ? Processes.runForResult(dir, "mount", "-o", options, m.getSource(), target.toString())
                : Processes.runForResult(dir, "mount", "-t", m.getType(), "-o", options, m.getSource(), target.toString());
        assertEquals(0, r.exitCode(), "mount " + m + ": " + r.stdout());
        mounted.add(target);
        return target;
    }

    private void unmount(Path target) throws Exception {
        assertEquals(0, Processes.runForResult(dir, "umount", target.toString()).exitCode());
        mounted.remove(target);
    }

    private static void assertCode(Status.Code code, Executable call) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::execute);
        assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    }

    @FunctionalInterface
    private interface Executable {
        void execute() throws Exception;
    }

    @Test
    void aPrepareCommitViewChainStacksItsLayersThroughRealMounts() throws Exception {
        Path base = mount(prepare("base-active", "", Map.of()), "base");
        Files.writeString(base.resolve("a.txt"), "from the base\n");
        Files.createDirectories(base.resolve("dir"));
        Files.writeString(base.resolve("dir/gone.txt"), "removed above\n");
        unmount(base);
        commit("base", "base-active");

        List<Mount> upper = prepare("top-active", "base", Map.of());
        assertEquals("overlay", upper.getFirst().getType(), "one parent: an overlay with an upper directory");
        Path top = mount(upper, "top");
        assertEquals("from the base\n", Files.readString(top.resolve("a.txt")));
        Files.writeString(top.resolve("b.txt"), "from the top\n");
        Files.delete(top.resolve("dir/gone.txt"));
        unmount(top);
        commit("top", "top-active");

        Path view = mount(snapshots.view(ViewSnapshotRequest.newBuilder().setKey("view").setParent("top").build())
                .getMountsList(), "view");
        assertEquals("from the base\n", Files.readString(view.resolve("a.txt")));
        assertEquals("from the top\n", Files.readString(view.resolve("b.txt")));
        assertFalse(Files.exists(view.resolve("dir/gone.txt")), "a file removed above is gone below");
        assertThrows(FileSystemException.class, () -> Files.writeString(view.resolve("c.txt"), "x"), "a view is read-only");

        assertEquals(Kind.COMMITTED, stat("top").getKind());
        assertEquals("base", stat("top").getParent());
        assertEquals(Kind.VIEW, stat("view").getKind());
        assertEquals("top", stat("view").getParent());
        List<Mount> viewOfOne = snapshots.view(ViewSnapshotRequest.newBuilder().setKey("view-base").setParent("base").build())
                .getMountsList();
        assertEquals("bind", viewOfOne.getFirst().getType(), "a view of one layer binds it read-only");
        assertTrue(viewOfOne.getFirst().getOptionsList().contains("ro"));
    }

    @Test
    void aParentWithChildrenCannotBeRemovedAndMissingSnapshotsAreNotFound() throws Exception {
        prepare("p-active", "", Map.of());
        commit("p", "p-active");
        prepare("child", "p", Map.of());
        assertCode(Status.Code.FAILED_PRECONDITION, () -> snapshots.remove(RemoveSnapshotRequest.newBuilder().setKey("p").build()));
        snapshots.remove(RemoveSnapshotRequest.newBuilder().setKey("child").build());
        snapshots.remove(RemoveSnapshotRequest.newBuilder().setKey("p").build());
        assertCode(Status.Code.NOT_FOUND, () -> stat("p"));
        assertCode(Status.Code.NOT_FOUND, () -> snapshots.remove(RemoveSnapshotRequest.newBuilder().setKey("p").build()));
        assertCode(Status.Code.NOT_FOUND, () -> prepare("orphan", "no-such-parent", Map.of()));
    }

    @Test
    void theUsageOfAnActiveSnapshotIsWhatWasWrittenToIt() throws Exception {
        Path active = mount(prepare("u-active", "", Map.of()), "u");
        Files.write(active.resolve("one.bin"), new byte[1 << 20]);
        Files.writeString(active.resolve("two.txt"), "22");
        Files.createDirectories(active.resolve("sub"));
        UsageResponse usage = snapshots.usage(UsageRequest.newBuilder().setKey("u-active").build());
        assertEquals((1 << 20) + 2, usage.getSize());
        assertEquals(4, usage.getInodes(), "the directory itself, two files and a subdirectory");
        unmount(active);
        commit("u", "u-active");
        assertEquals(usage, snapshots.usage(UsageRequest.newBuilder().setKey("u").build()), "measured at commit");
    }

    @Test
    void refusalsCarryTheCodesContainerdExpects() throws Exception {
        prepare("a", "", Map.of());
        assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("a", "", Map.of()));
        assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("b", "a", Map.of())); // a parent must be committed
        assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("", "", Map.of()));
        assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("c", "", Map.of("k", "v".repeat(4096))));
        snapshots.view(ViewSnapshotRequest.newBuilder().setKey("v").build());
        assertCode(Status.Code.FAILED_PRECONDITION, () -> commit("v-committed", "v"));
        commit("a-committed", "a");
        assertCode(Status.Code.FAILED_PRECONDITION, () -> snapshots.mounts(MountsRequest.newBuilder().setKey("a-committed").build()));
        prepare("d", "", Map.of());
        assertCode(Status.Code.ALREADY_EXISTS, () -> commit("a-committed", "d"));
        // a remote attempt that cannot be served (no TOC digest label) is an ordinary snapshot
        List<Mount> fallback = prepare("e", "", Map.of(Snapshotter.TARGET_LABEL, "sha256:" + "1".repeat(64)));
        assertEquals("bind", fallback.getFirst().getType());
        assertEquals(Kind.ACTIVE, stat("e").getKind());
    }

    @Test
    void labelsUpdateByMaskAndListingsFilter() throws Exception {
        prepare("l-active", "", Map.of("team", "a", "tier", "gold"));
        commit("l", "l-active");
        prepare("m", "l", Map.of("team", "b"));
        Info updated = snapshots.update(UpdateSnapshotRequest.newBuilder().setInfo(Info.newBuilder().setName("l")
                .putLabels("tier", "silver").putLabels("ignored", "x")).setUpdateMask(FieldMask.newBuilder()
                .addPaths("labels.tier").addPaths("labels.team")).build()).getInfo();
        assertEquals(Map.of("tier", "silver"), updated.getLabelsMap(), "labels.tier set, labels.team removed, the rest untouched");
        assertCode(Status.Code.INVALID_ARGUMENT, () -> snapshots.update(UpdateSnapshotRequest.newBuilder()
                .setInfo(Info.newBuilder().setName("l").setParent("m")).setUpdateMask(FieldMask.newBuilder().addPaths("parent")).build()));
        assertEquals(List.of("l"), names(List.of("kind==committed")));
        assertEquals(List.of("m"), names(List.of("labels.team==b")));
        assertEquals(List.of("l", "m"), names(List.of("labels.\"tier\"", "parent==l")), "filters are or-ed");
        assertEquals(List.of("m"), names(List.of("name~=^m$,kind==active")), "clauses are and-ed");
        assertCode(Status.Code.INVALID_ARGUMENT, () -> names(List.of("size>3")));
    }

    private List<String> names(List<String> filters) {
        List<String> out = new ArrayList<>();
        snapshots.list(ListSnapshotsRequest.newBuilder().addAllFilters(filters).build())
                .forEachRemaining(batch -> batch.getInfoList().forEach(i -> out.add(i.getName())));
        return out.stream().sorted().toList();
    }

    @Test
    void snapshotsSurviveAKillAndDirectoriesNoSnapshotOwnsAreCleanedAtStart() throws Exception {
        Path active = mount(prepare("k-active", "", Map.of()), "k");
        Files.writeString(active.resolve("kept.txt"), "kept\n");
        unmount(active);
        commit("k", "k-active");
        daemon.kill();
        Path orphan = Files.createDirectories(dir.resolve("node/snapshotter/snapshots/999/fs"));
        daemon = DaemonProcess.start(dir, "node", options).awaitReady();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Info k = null;
        while (k == null && System.nanoTime() < deadline) {
            try {
                k = stat("k");
            } catch (StatusRuntimeException reconnecting) {
                Thread.sleep(200);
            }
        }
        assertEquals(Kind.COMMITTED, k.getKind(), "the committed snapshot is there after kill -9");
        assertFalse(Files.exists(orphan), "a directory no snapshot owns was removed");
        Path view = mount(snapshots.view(ViewSnapshotRequest.newBuilder().setKey("kv").setParent("k").build()).getMountsList(), "kv");
        assertEquals("kept\n", Files.readString(view.resolve("kept.txt")));
    }
}
