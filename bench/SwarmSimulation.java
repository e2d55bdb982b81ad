import dev.starling.discovery.Member;
import dev.starling.discovery.Placement;
import dev.starling.peer.SpanHolders;
import dev.starling.peer.SwarmWait;
import dev.starling.protocol.UploadSlots;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Random;

/**
 * A discrete-event simulation of a scale-out in which every simulated node runs Starling's own
 * policy classes: who owns a span (Placement, rendezvous), who a busy server names (SpanHolders, on
 * the simulated clock), how many answers a node sends at once and when a refused requester comes
 * back (UploadSlots), how a requester waits through a busy owner (SwarmWait), with the daemon's
 * constants (owners tried before the registry). Links
 * are simulated: each node has an upload and a download cap, the registry an upload cap, and a
 * transfer gets the smaller of its sender's and its receiver's equal share. Every node reads the
 * image at once, the start-up set (the first 5 %) first, with a window of chunks in flight as the
 * daemon's read-ahead keeps. Optionally a share of the nodes leaves mid-run (killed: its transfers
 * fail at once; membership drops it after the detection delay).
 * <p>
 * Not modelled: hedged requests (a second owner asked for what it holds after the hedge delay),
 * the CPU, TCP's ramp-up, the registry's latency. Run it with bench/simulate.
 */
public final class SwarmSimulation {
    static final String BLOB = "sha256:" + "5a".repeat(32);
    /** As PeerOrigin: the owner and the next one are asked before the registry. */
    static final int OWNERS_TRIED = 2;

    record Params(String name, int nodes, long imageBytes, long chunkBytes, long fetchUnit, double uploadBps,
                  double downloadBps, double registryBps, int slots, int window, double rttSeconds, double leaveShare,
                  double leaveAtSeconds, double detectSeconds, long seed) {
    }

    // --- the clock and its events -------------------------------------------------------------------
    private long now; // ns
    private long seq;
    private record Event(long at, long seq, Runnable run) {
    }
    private final PriorityQueue<Event> events = new PriorityQueue<>((a, b) -> a.at != b.at ? Long.compare(a.at, b.at)
            : Long.compare(a.seq, b.seq));

    private void at(long when, Runnable r) {
        events.add(new Event(Math.max(when, now), seq++, r));
    }

    private void after(double seconds, Runnable r) {
        at(now + (long) (seconds * 1e9), r);
    }

    // --- links ----------------------------------------------------------------------------------------
    private final class Link {
        final double upBps, downBps;
        final List<Flow> up = new ArrayList<>(), down = new ArrayList<>();
        long uploaded;

        Link(double upBps, double downBps) {
            this.upBps = upBps;
            this.downBps = downBps;
        }
    }

    private final class Flow {
        final Link from, to;
        double remaining;
        double rate;
        long updated;
        long version;
        final Runnable done, failed;
        boolean over;

        Flow(Link from, Link to, long bytes, Runnable done, Runnable failed) {
            this.from = from;
            this.to = to;
            this.remaining = bytes;
            this.updated = now;
            this.done = done;
            this.failed = failed;
        }
    }

    private Flow send(Link from, Link to, long bytes, Runnable done, Runnable failed) {
        Flow f = new Flow(from, to, bytes, done, failed);
        from.up.add(f);
        to.down.add(f);
        reshare(from);
        reshare(to);
        return f;
    }

    private void reshare(Link link) {
        for (Flow f : link.up) {
            rate(f);
        }
        for (Flow f : link.down) {
            rate(f);
        }
    }

    private void rate(Flow f) {
        f.remaining -= f.rate * (now - f.updated) / 1e9;
        f.from.uploaded += (long) (f.rate * (now - f.updated) / 1e9);
        f.updated = now;
        f.rate = Math.min(f.from.upBps / f.from.up.size(), f.to.downBps / f.to.down.size());
        long v = ++f.version;
        at(now + (long) Math.ceil(Math.max(0, f.remaining) / f.rate * 1e9), () -> {
            if (f.version == v && !f.over) {
                end(f, true);
            }
        });
    }

    private void end(Flow f, boolean ok) {
        f.remaining -= f.rate * (now - f.updated) / 1e9;
        f.from.uploaded += (long) (f.rate * (now - f.updated) / 1e9);
        f.updated = now;
        f.over = true;
        f.from.up.remove(f);
        f.to.down.remove(f);
        reshare(f.from);
        reshare(f.to);
        (ok ? f.done : f.failed).run();
    }

    // --- nodes ----------------------------------------------------------------------------------------
    private final class Node {
        final int index;
        final Member member;
        final Link link;
        final SpanHolders holders;
        final BitSet have = new BitSet();
        /** Chunks this node is filling from the registry, and who waits for each. */
        final Map<Integer, List<Runnable[]>> filling = new HashMap<>();
        final UploadSlots slots;
        boolean alive = true;
        int next;
        int inFlight;
        long startupAt = -1, doneAt = -1;

        Node(int index) {
            this.index = index;
            this.member = new Member("10.0." + (index / 250) + "." + (index % 250) + ":7400",
                    InetSocketAddress.createUnresolved("10.0.0.1", 7400), "");
            this.link = new Link(p.uploadBps, p.downloadBps);
            this.holders = new SpanHolders(p.fetchUnit, () -> now);
            this.slots = new UploadSlots(p.slots, () -> now);
        }
    }

    private final Params p;
    private final int chunks;
    private final Node[] nodes;
    private final Map<String, Node> byId = new HashMap<>();
    private final Link registry;
    private List<Member> members;
    private java.util.Set<String> memberIds;
    private final Map<Integer, List<Member>> ownersCache = new HashMap<>();
    private long registryBytes;
    private int registryFallbacks;
    private int failedReads;

    SwarmSimulation(Params p) {
        this.p = p;
        this.chunks = (int) ((p.imageBytes + p.chunkBytes - 1) / p.chunkBytes);
        this.nodes = new Node[p.nodes];
        List<Member> all = new ArrayList<>();
        for (int i = 0; i < p.nodes; i++) {
            nodes[i] = new Node(i);
            byId.put(nodes[i].member.nodeId(), nodes[i]);
            all.add(nodes[i].member);
        }
        this.members = List.copyOf(all);
        this.memberIds = new java.util.HashSet<>(byId.keySet());
        this.registry = new Link(p.registryBps, 0);
    }

    private long chunkBytes(int c) {
        return Math.min(p.chunkBytes, p.imageBytes - c * p.chunkBytes);
    }

    private List<Member> owners(int c) {
        return ownersCache.computeIfAbsent(c, k -> {
            List<Member> all = Placement.owners(BLOB, Placement.span(k * p.chunkBytes, p.fetchUnit), members, "");
            return all.subList(0, Math.min(all.size(), OWNERS_TRIED + 1));
        });
    }

    private boolean isMember(String id) {
        return memberIds.contains(id);
    }

    private void message(Runnable r) {
        after(p.rttSeconds / 2, r);
    }

    // --- the reader: the start-up set, then the rest in order, a window of chunks in flight -----------
    private void pump(Node n) {
        while (n.alive && n.inFlight < p.window && n.next < chunks) {
            int c = n.next++;
            if (n.have.get(c)) {
                continue;
            }
            n.inFlight++;
            fetch(n, c, 0);
        }
    }

    private void received(Node n, int c) {
        if (!n.alive) {
            return;
        }
        n.have.set(c);
        n.inFlight--;
        int startup = Math.max(1, chunks / 20);
        if (n.startupAt < 0 && n.have.nextClearBit(0) >= startup) {
            n.startupAt = now;
        }
        if (n.doneAt < 0 && n.have.cardinality() == chunks) {
            n.doneAt = now;
        }
        pump(n);
    }

    /** Chunk {@code c} for {@code n} from its {@code tried}-th owner, or the registry; as PeerOrigin.fetchSpan. */
    private void fetch(Node n, int c, int tried) {
        List<Member> owners = owners(c);
        Member owner = tried < owners.size() ? owners.get(tried) : null;
        if (owner == null || tried >= OWNERS_TRIED || owner.equals(n.member) || owners.size() == 1) {
            if (owner != null && !owner.equals(n.member) && tried >= OWNERS_TRIED) {
                registryFallbacks++;
            }
            fill(n, c, () -> received(n, c), () -> {
                if (n.alive) {
                    failedReads++;
                }
            });
            return;
        }
        Node o = byId.get(owner.nodeId());
        SwarmWait swarm = new SwarmWait(n.member.nodeId(), owner.nodeId(), this::isMember, () -> now, SwarmWait.PATIENCE.toNanos());
        askOwner(n, o, c, tried, swarm);
    }

    private void askOwner(Node n, Node o, int c, int tried, SwarmWait swarm) {
        message(() -> {
            if (!o.alive) { // a dead peer's port: refused at once; the next source
                message(() -> fetch(n, c, tried + 1));
                return;
            }
            long slot = o.slots.tryAcquire();
            if (slot < 0) {
                List<String> named = o.holders.holders(BLOB, c * p.chunkBytes, n.member.nodeId()).stream()
                        .filter(this::isMember).toList();
                int retryAfter = o.slots.retryAfterMillis();
                message(() -> {
                    swarm.ownerBusy(named);
                    askHolders(n, o, c, tried, swarm, retryAfter);
                });
                return;
            }
            // the owner serves from what it holds, filling from the registry first when it has not got it
            fill(o, c, () -> upload(o, slot, n, c, () -> fetch(n, c, tried + 1)), () -> {
                o.slots.release(slot);
                message(() -> fetch(n, c, tried + 1));
            });
        });
    }

    private void askHolders(Node n, Node o, int c, int tried, SwarmWait swarm, int retryAfter) {
        String id = swarm.nextHolder();
        if (id == null) {
            long wait = swarm.retryOwnerAfterMillis(retryAfter);
            if (wait < 0) {
                fetch(n, c, tried + 1);
            } else {
                after(wait / 1000.0, () -> askOwner(n, o, c, tried, swarm));
            }
            return;
        }
        Node h = byId.get(id);
        message(() -> {
            if (!h.alive || !h.have.get(c)) {
                message(() -> askHolders(n, o, c, tried, swarm, retryAfter)); // gone, or a MISS: the next one
                return;
            }
            long slot = h.slots.tryAcquire();
            if (slot < 0) {
                List<String> named = h.holders.holders(BLOB, c * p.chunkBytes, n.member.nodeId()).stream()
                        .filter(this::isMember).toList();
                message(() -> {
                    swarm.named(named);
                    askHolders(n, o, c, tried, swarm, retryAfter);
                });
                return;
            }
            upload(h, slot, n, c, () -> askHolders(n, o, c, tried, swarm, retryAfter));
        });
    }

    /** {@code from} (holding a slot) sends chunk {@code c} to {@code to}; {@code lost} when either dies on the way. */
    private void upload(Node from, long slot, Node to, int c, Runnable lost) {
        send(from.link, to.link, chunkBytes(c), () -> {
            from.slots.release(slot);
            from.holders.held(BLOB, c * p.chunkBytes, to.member.nodeId()); // the last byte left: a holder now
            received(to, c);
        }, () -> {
            from.slots.release(slot);
            if (to.alive) {
                lost.run();
            }
        });
    }

    /** {@code n} has chunk {@code c}, from the registry once for all who wait on this node (single flight). */
    private void fill(Node n, int c, Runnable done, Runnable failed) {
        if (n.have.get(c)) {
            done.run();
            return;
        }
        List<Runnable[]> waiting = n.filling.get(c);
        if (waiting != null) {
            waiting.add(new Runnable[] {done, failed});
            return;
        }
        waiting = new ArrayList<>();
        waiting.add(new Runnable[] {done, failed});
        n.filling.put(c, waiting);
        registryBytes += chunkBytes(c);
        after(p.rttSeconds, () -> send(registry, n.link, chunkBytes(c), () -> {
            n.have.set(c);
            n.filling.remove(c).forEach(w -> w[0].run());
        }, () -> n.filling.remove(c).forEach(w -> w[1].run())));
    }

    private void leave(Random random) {
        int count = (int) Math.round(p.nodes * p.leaveShare);
        List<Node> alive = new ArrayList<>(Arrays.asList(nodes));
        java.util.Collections.shuffle(alive, random);
        List<Node> gone = alive.subList(0, count);
        for (Node n : gone) {
            n.alive = false;
            for (Flow f : new ArrayList<>(n.link.up)) {
                end(f, false);
            }
            for (Flow f : new ArrayList<>(n.link.down)) {
                end(f, false);
            }
        }
        after(p.detectSeconds, () -> {
            List<Member> left = new ArrayList<>(members);
            gone.forEach(n -> left.remove(n.member));
            members = List.copyOf(left);
            gone.forEach(n -> memberIds.remove(n.member.nodeId()));
            ownersCache.clear();
        });
    }

    String run() {
        Random random = new Random(p.seed);
        for (Node n : nodes) {
            at((long) (random.nextDouble() * 10_000_000L), () -> pump(n)); // all start within 10 ms
        }
        if (p.leaveShare > 0) {
            at((long) (p.leaveAtSeconds * 1e9), () -> leave(random));
        }
        long start = System.nanoTime();
        while (!events.isEmpty()) {
            Event e = events.poll();
            now = e.at;
            e.run.run();
        }
        double simSeconds = (System.nanoTime() - start) / 1e9;
        List<Node> stayed = Arrays.stream(nodes).filter(n -> n.alive).toList();
        long notDone = stayed.stream().filter(n -> n.doneAt < 0).count();
        double[] done = stayed.stream().filter(n -> n.doneAt >= 0).mapToDouble(n -> n.doneAt / 1e9).sorted().toArray();
        double[] startup = stayed.stream().filter(n -> n.startupAt >= 0).mapToDouble(n -> n.startupAt / 1e9).sorted().toArray();
        long[] up = Arrays.stream(nodes).mapToLong(n -> n.link.uploaded).toArray();
        double upMean = Arrays.stream(up).average().orElse(0), upMax = Arrays.stream(up).max().orElse(0);
        double f = p.imageBytes, r = p.registryBps, u = p.uploadBps, n = p.nodes;
        double tMin = Math.max(f / r, n * f / (r + n * u));
        double wall = done.length == 0 ? Double.NaN : done[done.length - 1];
        return String.format(Locale.ROOT, "%-26s %5d %8.1f %7.1f %7.1f %7.1f %8.2f %8.1f %10.2f %8.2f %10.2f %7d %6d %6.1f",
                p.name, p.nodes, wall, pct(done, 50), pct(done, 90), pct(done, 99), pct(startup, 99), tMin,
                wall / tMin, registryBytes / f, upMax / upMean, failedReads + notDone, registryFallbacks, simSeconds);
    }

    private static double pct(double[] sorted, int p) {
        return sorted.length == 0 ? Double.NaN : sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
    }

    static final double MBIT = 1e6 / 8;

    public static void main(String[] args) {
        int slots = Integer.parseInt(System.getenv().getOrDefault("SLOTS", "8"));
        int window = Integer.parseInt(System.getenv().getOrDefault("WINDOW", "4"));
        List<Params> runs = new ArrayList<>();
        for (String a : args.length == 0 ? new String[] {"bench:12", "bench:24", "kraken", "kraken-churn"} : args) {
            String[] kv = a.split(":");
            switch (kv[0]) {
                // bench/swarm.sh's defaults: a 64 MiB model (65 MiB as eStargz, 4 MiB chunks), 8 Mbit/s node
                // uploads, a 50 Mbit/s registry, unshaped veth downloads
                case "bench" -> runs.add(new Params("swarm.sh N=" + kv[1], Integer.parseInt(kv[1]), 65L << 20, 4L << 20, 2L << 20,
                        8 * MBIT, 10_000 * MBIT, 50 * MBIT, slots, window, 0.0002, 0, 0, 0, 1));
                // Kraken's published case: a 3 GB image to 2,600 nodes, 300 MB/s per node, the origin as one
                // 10 Gbit/s registry
                case "kraken" -> runs.add(new Params("kraken 3GB", 2600, 3_000_000_000L, 4L << 20, 2L << 20, 300e6, 300e6,
                        10_000 * MBIT, slots, window, 0.0005, 0, 0, 0, 1));
                case "kraken-churn" -> runs.add(new Params("kraken 3GB, 10% leave", 2600, 3_000_000_000L, 4L << 20, 2L << 20,
                        300e6, 300e6, 10_000 * MBIT, slots, window, 0.0005, 0.10, 5, 2, 1));
                default -> throw new IllegalArgumentException("runs: bench:N, kraken, kraken-churn; not " + a);
            }
        }
        System.out.printf(Locale.ROOT, "%-26s %5s %8s %7s %7s %7s %8s %8s %10s %8s %10s %7s %6s %6s%n", "run", "N", "wall s",
                "p50 s", "p90 s", "p99 s", "start p99", "T_min s", "wall/T_min", "egress", "up max/mean", "failed",
                "fallbk", "sim s");
        for (Params p : runs) {
            System.out.println(new SwarmSimulation(p).run());
        }
        System.out.printf(Locale.ROOT, "upload slots %d, window %d chunks; egress is registry bytes / image; start p99: the first 5 %% of the chunks%n",
                slots, window);
    }
}
