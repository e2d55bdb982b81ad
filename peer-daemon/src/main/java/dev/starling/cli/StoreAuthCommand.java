package dev.starling.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starling.daemon.ControlSocket;
import dev.starling.daemon.DaemonConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code starling store-auth}: the Additional Layer Store's auth helper. containers/image runs it
 * on each pull with the pull's credentials as JSON on stdin; it hands them to the daemon.
 */
@Command(name = "store-auth", mixinStandardHelpOptions = true,
        description = {"The layer store's auth helper: hands the credentials of a pull (JSON on stdin, written by",
                "containers/image: {\"<image ref>\": {\"username\", \"password\", \"identityToken\"}}) to the daemon,",
                "so it can resolve private images. Name it in registries.conf:",
                "  additional-layer-store-auth-helper = \"starling-store-auth\"  (a wrapper running this command)"})
final class StoreAuthCommand implements Callable<Integer> {
    /** More than any credentials map a pull writes; a bound on what is read from stdin. */
    private static final int MAX_INPUT = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--socket", paramLabel = "PATH", description = "the daemon's control socket (default: ${DEFAULT-VALUE})")
    Path socket = DaemonConfig.DEFAULT_SOCKET;

    @Parameters(arity = "0..1", paramLabel = "SOCKET", description = "the control socket, as stargz-store-helper takes it")
    Path socketArgument;

    @Override
    public Integer call() throws IOException {
        byte[] input = System.in.readNBytes(MAX_INPUT + 1);
        if (input.length > MAX_INPUT) {
            throw new IllegalArgumentException("the credentials on stdin are over " + MAX_INPUT + " bytes");
        }
        JsonNode credentials;
        try {
            credentials = JSON.readTree(input);
        } catch (IOException e) {
            throw new IllegalArgumentException("stdin is not the JSON containers/image writes: " + e.getMessage());
        }
        Path target = socketArgument != null ? socketArgument : socket;
        JsonNode answer = ControlSocket.call(target, JSON.createObjectNode().put("op", "add-credentials").set("credentials", credentials));
        if (!answer.path("ok").asBoolean()) {
            System.err.println("starling: " + answer.path("error").asText());
            return 1;
        }
        return 0;
    }
}
