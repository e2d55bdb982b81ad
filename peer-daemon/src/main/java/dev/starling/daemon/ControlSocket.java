package dev.starling.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * The daemon's control socket: a unix domain socket, root-only, one JSON request line and one JSON
 * answer line per connection ({@code {"op":"mount",...}} -> {@code {"ok":true,...}} or
 * {@code {"ok":false,"error":"..."}}). What the CLI's {@code mount --socket}, {@code umount} and
 * {@code status} speak.
 */
public final class ControlSocket implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ControlSocket.class.getName());
    static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final ServerSocketChannel server;
    private final Thread acceptor;

    private ControlSocket(Path path, ServerSocketChannel server, Function<JsonNode, ObjectNode> handler) {
        this.path = path;
        this.server = server;
        this.acceptor = Thread.ofPlatform().daemon().name("starling-control").start(() -> accept(handler));
    }

    public static ControlSocket listen(Path path, Function<JsonNode, ObjectNode> handler) throws IOException {
        Files.createDirectories(path.toAbsolutePath().getParent());
        if (Files.exists(path)) {
            if (answers(path)) {
                throw new IOException("a daemon already serves " + path + "; stop it first (or give another --socket)");
            }
            Files.delete(path); // left by a daemon that died
        }
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
        return new ControlSocket(path, server, handler);
    }

    /**
     * The daemon a command talks to: the socket it was given, else the one at the default path when a
     * daemon answers there, else null (the command works on its own).
     */
    public static Path daemonFor(Path given) {
        return given != null ? given : answers(DaemonConfig.DEFAULT_SOCKET) ? DaemonConfig.DEFAULT_SOCKET : null;
    }

    /** Whether a daemon answers at {@code path}. */
    public static boolean answers(Path path) {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            return ch.isConnected();
        } catch (IOException e) {
            return false;
        }
    }

    /** Sends one request to the daemon at {@code path} and returns its answer. */
    public static JsonNode call(Path path, ObjectNode request) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            OutputStream out = Channels.newOutputStream(ch);
            out.write((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            String line = in.readLine();
            if (line == null) {
                throw new IOException("the daemon at " + path + " closed the connection without an answer");
            }
            return JSON.readTree(line);
        } catch (java.net.ConnectException | java.nio.file.NoSuchFileException e) {
            throw new IOException("no daemon answers at " + path + " (start one with `starling daemon`)", e);
        }
    }

    private void accept(Function<JsonNode, ObjectNode> handler) {
        while (server.isOpen()) {
            try {
                SocketChannel ch = server.accept();
                Thread.ofVirtual().start(() -> serve(ch, handler));
            } catch (IOException closed) {
                return;
            }
        }
    }

    private static void serve(SocketChannel ch, Function<JsonNode, ObjectNode> handler) {
        try (ch) {
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            String line = in.readLine();
            ObjectNode answer;
            try {
                answer = handler.apply(JSON.readTree(line == null ? "{}" : line));
            } catch (RuntimeException | IOException e) {
                answer = JSON.createObjectNode().put("ok", false).put("error", "bad request: " + e.getMessage());
            }
            OutputStream out = Channels.newOutputStream(ch);
            out.write((JSON.writeValueAsString(answer) + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            LOG.fine("control connection: " + e.getMessage());
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        Files.deleteIfExists(path);
    }
}
