package dev.starling.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The control socket's operations ({@code mount}, {@code umount}, {@code status},
 * {@code add-credentials}): a JSON request in, a JSON answer with {@code ok} out, a failure as its
 * message rather than a dropped connection.
 */
final class ControlRequests {
    private final Daemon daemon;

    ControlRequests(Daemon daemon) {
        this.daemon = daemon;
    }

    ObjectNode handle(JsonNode request) {
        String op = request.path("op").asText("");
        try {
            return switch (op) {
                case "mount" -> daemon.mount(request.path("image").asText(), Path.of(request.path("target").asText()),
                        request.path("platform").isTextual() ? request.path("platform").asText() : null);
                case "umount" -> daemon.umount(Path.of(request.path("target").asText()));
                case "status" -> ok().setAll(daemon.status());
                case "add-credentials" -> daemon.addCredentials(request.path("credentials"));
                default -> fail("unknown operation \"" + op + "\" (mount, umount, status, add-credentials)");
            };
        } catch (IOException | RuntimeException e) {
            return fail(e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    static ObjectNode ok() {
        return ControlSocket.JSON.createObjectNode().put("ok", true);
    }

    static ObjectNode fail(String error) {
        return ControlSocket.JSON.createObjectNode().put("ok", false).put("error", error);
    }
}
