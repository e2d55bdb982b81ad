package dev.starling.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starling.daemon.ControlSocket;
import dev.starling.daemon.DaemonConfig;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code starling status}: what the node daemon holds and where its bytes came from. */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = {"Show the node daemon's members, mounts and open layers: fetched %, bytes by source",
                "(memory / disk / peers / registry), bytes served to peers, quarantined peers."})
final class StatusCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--socket", paramLabel = "PATH", description = "the daemon's control socket (default: ${DEFAULT-VALUE})")
    Path socket = DaemonConfig.DEFAULT_SOCKET;

    @Option(names = "--json", description = "print the daemon's answer as JSON")
    boolean json;

    @Override
    public Integer call() throws Exception {
        JsonNode s = ControlSocket.call(socket, JSON.createObjectNode().put("op", "status"));
        if (!s.path("ok").asBoolean()) {
            System.err.println("starling: " + s.path("error").asText());
            return 1;
        }
        if (json) {
            System.out.println(JSON.writeValueAsString(s));
            return 0;
        }
        System.out.printf("node %s, cluster %s%s%n", s.path("node").asText(), s.path("cluster").asText(),
                s.path("zone").asText().isEmpty() ? "" : ", zone " + s.path("zone").asText());
        System.out.println("members: " + s.path("members").size() + " " + s.path("members"));
        System.out.printf("served to peers: %s; filled from the registry for peers: %s; quarantined: %s (%d in all)%n",
                Sizes.human(s.path("bytesServedToPeers").asLong()), Sizes.human(s.path("bytesFilledForPeers").asLong()),
                s.path("quarantined"), s.path("quarantines").asLong());
        JsonNode memory = s.path("memory");
        System.out.printf("memory: %s resident; heap %s of %s; memory tier %s of %s%n",
                Sizes.human(memory.path("residentBytes").asLong()), Sizes.human(memory.path("heapUsedBytes").asLong()),
                Sizes.human(memory.path("heapMaxBytes").asLong()), Sizes.human(memory.path("memoryTierBytes").asLong()),
                Sizes.human(memory.path("memoryTierMaxBytes").asLong()));
        JsonNode fetched = s.path("fetched");
        System.out.printf("fetched since start: %s from peers, %s from the registry in %d requests%n",
                Sizes.human(fetched.path("peerBytes").asLong()), Sizes.human(fetched.path("registryBytes").asLong()),
                fetched.path("registryRequests").asLong());
        System.out.println("mounts: " + s.path("mounts"));
        System.out.printf("%-20s %9s %10s %10s %10s %10s%n", "layer", "fetched", "memory", "disk", "peers", "registry");
        for (JsonNode layer : s.path("layers")) {
            JsonNode served = layer.path("bytesServed");
            System.out.printf("%-20s %8.2f%% %10s %10s %10s %10s%n", layer.path("digest").asText().substring(0, 19),
                    layer.path("fetchedPercent").asDouble(), Sizes.human(served.path("memory").asLong()),
                    Sizes.human(served.path("disk").asLong()), Sizes.human(layer.path("peerBytes").asLong()),
                    Sizes.human(layer.path("fetchedBytes").asLong()));
        }
        return 0;
    }
}
