package dev.starling.snapshot;

import com.google.protobuf.Empty;
import com.google.protobuf.Timestamp;
import dev.starling.containerd.snapshots.CleanupRequest;
import dev.starling.containerd.snapshots.CommitSnapshotRequest;
import dev.starling.containerd.snapshots.Info;
import dev.starling.containerd.snapshots.Kind;
import dev.starling.containerd.snapshots.ListSnapshotsRequest;
import dev.starling.containerd.snapshots.ListSnapshotsResponse;
import dev.starling.containerd.snapshots.MountsRequest;
import dev.starling.containerd.snapshots.MountsResponse;
import dev.starling.containerd.snapshots.PrepareSnapshotRequest;
import dev.starling.containerd.snapshots.PrepareSnapshotResponse;
import dev.starling.containerd.snapshots.RemoveSnapshotRequest;
import dev.starling.containerd.snapshots.SnapshotsGrpc;
import dev.starling.containerd.snapshots.StatSnapshotRequest;
import dev.starling.containerd.snapshots.StatSnapshotResponse;
import dev.starling.containerd.snapshots.UpdateSnapshotRequest;
import dev.starling.containerd.snapshots.UpdateSnapshotResponse;
import dev.starling.containerd.snapshots.UsageRequest;
import dev.starling.containerd.snapshots.UsageResponse;
import dev.starling.containerd.snapshots.ViewSnapshotRequest;
import dev.starling.containerd.snapshots.ViewSnapshotResponse;
import dev.starling.containerd.types.Mount;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * containerd's {@code containerd.services.snapshots.v1.Snapshots} over {@link Snapshotter}: requests
 * in, typed refusals out as the gRPC codes containerd's errdefs expect (NOT_FOUND, ALREADY_EXISTS,
 * FAILED_PRECONDITION, INVALID_ARGUMENT, UNAVAILABLE; anything else INTERNAL, logged).
 */
final class SnapshotService extends SnapshotsGrpc.SnapshotsImplBase {
    private static final Logger LOG = Logger.getLogger(SnapshotService.class.getName());
    /** How many snapshots go in one List message: containerd reads a stream of batches. */
    private static final int LIST_BATCH = 100;
    private final Snapshotter snapshotter;

    SnapshotService(Snapshotter snapshotter) {
        this.snapshotter = snapshotter;
    }

    @FunctionalInterface
    private interface Call<T> {
        T run() throws SnapshotException, IOException;
    }

    private static <T> void answer(String op, StreamObserver<T> out, Call<T> call) {
        T result;
        try {
            result = call.run();
        } catch (SnapshotException e) {
            out.onError(status(e).withDescription(e.getMessage()).asRuntimeException());
            return;
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, op + " failed", e);
            out.onError(Status.INTERNAL.withDescription(op + ": " + e).asRuntimeException());
            return;
        }
        out.onNext(result);
        out.onCompleted();
    }

    static Status status(SnapshotException e) {
        return switch (e) {
            case SnapshotException.NotFound n -> Status.NOT_FOUND;
            case SnapshotException.AlreadyExists a -> Status.ALREADY_EXISTS;
            case SnapshotException.FailedPrecondition f -> Status.FAILED_PRECONDITION;
            case SnapshotException.InvalidArgument i -> Status.INVALID_ARGUMENT;
            case SnapshotException.Unavailable u -> Status.UNAVAILABLE;
        };
    }

    private static List<Mount> mounts(List<Snapshotter.Mount> mounts) {
        return mounts.stream().map(m -> Mount.newBuilder().setType(m.type()).setSource(m.source())
                .addAllOptions(m.options()).build()).toList();
    }

    private static Timestamp time(Instant t) {
        return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
    }

    static Info info(Snapshot s) {
        return Info.newBuilder().setName(s.key()).setParent(s.parent()).setKind(switch (s.kind()) {
            case VIEW -> Kind.VIEW;
            case ACTIVE -> Kind.ACTIVE;
            case COMMITTED -> Kind.COMMITTED;
        }).setCreatedAt(time(s.created())).setUpdatedAt(time(s.updated())).putAllLabels(s.labels()).build();
    }

    @Override
    public void prepare(PrepareSnapshotRequest r, StreamObserver<PrepareSnapshotResponse> out) {
        answer("Prepare", out, () -> PrepareSnapshotResponse.newBuilder()
                .addAllMounts(mounts(snapshotter.prepare(r.getKey(), r.getParent(), r.getLabelsMap()))).build());
    }

    @Override
    public void view(ViewSnapshotRequest r, StreamObserver<ViewSnapshotResponse> out) {
        answer("View", out, () -> ViewSnapshotResponse.newBuilder()
                .addAllMounts(mounts(snapshotter.view(r.getKey(), r.getParent(), r.getLabelsMap()))).build());
    }

    @Override
    public void mounts(MountsRequest r, StreamObserver<MountsResponse> out) {
        answer("Mounts", out, () -> MountsResponse.newBuilder().addAllMounts(mounts(snapshotter.mounts(r.getKey()))).build());
    }

    @Override
    public void commit(CommitSnapshotRequest r, StreamObserver<Empty> out) {
        answer("Commit", out, () -> {
            snapshotter.commit(r.getName(), r.getKey(), r.getLabelsMap());
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public void remove(RemoveSnapshotRequest r, StreamObserver<Empty> out) {
        answer("Remove", out, () -> {
            snapshotter.remove(r.getKey());
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public void stat(StatSnapshotRequest r, StreamObserver<StatSnapshotResponse> out) {
        answer("Stat", out, () -> StatSnapshotResponse.newBuilder().setInfo(info(snapshotter.stat(r.getKey()))).build());
    }

    @Override
    public void update(UpdateSnapshotRequest r, StreamObserver<UpdateSnapshotResponse> out) {
        answer("Update", out, () -> UpdateSnapshotResponse.newBuilder().setInfo(info(snapshotter.update(
                r.getInfo().getName(), r.getInfo().getLabelsMap(), r.getUpdateMask().getPathsList()))).build());
    }

    @Override
    public void list(ListSnapshotsRequest r, StreamObserver<ListSnapshotsResponse> out) {
        List<Snapshot> all;
        try {
            all = snapshotter.list(r.getFiltersList());
        } catch (SnapshotException e) {
            out.onError(status(e).withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        for (int i = 0; i < all.size(); i += LIST_BATCH) {
            ListSnapshotsResponse.Builder batch = ListSnapshotsResponse.newBuilder();
            all.subList(i, Math.min(all.size(), i + LIST_BATCH)).forEach(s -> batch.addInfo(info(s)));
            out.onNext(batch.build());
        }
        out.onCompleted();
    }

    @Override
    public void usage(UsageRequest r, StreamObserver<UsageResponse> out) {
        answer("Usage", out, () -> {
            Snapshotter.Usage u = snapshotter.usage(r.getKey());
            return UsageResponse.newBuilder().setSize(u.size()).setInodes(u.inodes()).build();
        });
    }

    @Override
    public void cleanup(CleanupRequest r, StreamObserver<Empty> out) {
        answer("Cleanup", out, () -> {
            snapshotter.cleanup();
            return Empty.getDefaultInstance();
        });
    }
}
