package dev.starling.snapshot;

import dev.starling.cri.AuthConfig;
import dev.starling.cri.PullImageRequest;
import dev.starling.registry.Credentials;
import dev.starling.registry.ImageReference;
import dev.starling.store.HelperCredentials;
import io.grpc.CallOptions;
import io.grpc.HandlerRegistry;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * The CRI image-service proxy stargz-snapshotter offers: kubelet's {@code --image-service-endpoint}
 * points here, every call of {@code runtime.v1.ImageService} goes on to containerd's CRI socket
 * byte for byte, and a PullImage's credentials (kubelet's image pull secrets) are kept for the
 * image's registry first, so the snapshotter can fetch a private image's layers lazily without
 * node-wide secrets.
 */
public final class ImageServiceProxy implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ImageServiceProxy.class.getName());
    static final String SERVICE = "runtime.v1.ImageService";
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    private final Server server;
    private final ManagedChannel containerd;
    private final EpollEventLoopGroup group;
    private final Path socket;

    private ImageServiceProxy(Server server, ManagedChannel containerd, EpollEventLoopGroup group, Path socket) {
        this.server = server;
        this.containerd = containerd;
        this.group = group;
        this.socket = socket;
    }

    /** Serves the proxy at {@code socket}, forwarding to containerd's CRI at {@code containerdSocket}. */
    public static ImageServiceProxy start(Path socket, Path containerdSocket, HelperCredentials credentials,
                                          ExecutorService executor) throws IOException {
        EpollEventLoopGroup group = new EpollEventLoopGroup(2);
        ManagedChannel upstream = UnixGrpc.channel(containerdSocket, group);
        HandlerRegistry forward = new HandlerRegistry() {
            @Override
            public ServerMethodDefinition<?, ?> lookupMethod(String fullMethodName, String authority) {
                if (!fullMethodName.startsWith(SERVICE + "/")) {
                    return null; // only the image service: kubelet sends the runtime service to containerd itself
                }
                MethodDescriptor<byte[], byte[]> method = MethodDescriptor.<byte[], byte[]>newBuilder()
                        .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName(fullMethodName)
                        .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
                ServerCallHandler<byte[], byte[]> handler = ServerCalls.asyncUnaryCall((request, response) -> {
                    if (fullMethodName.equals(SERVICE + "/PullImage")) {
                        keepCredentials(request, credentials);
                    }
                    ClientCalls.asyncUnaryCall(upstream.newCall(method, CallOptions.DEFAULT), request, response);
                });
                return ServerMethodDefinition.create(method, handler);
            }
        };
        Server server;
        try {
            server = UnixGrpc.serve(socket, group, executor, b -> b.fallbackHandlerRegistry(forward));
        } catch (IOException | RuntimeException e) {
            upstream.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw new IOException("cannot serve the CRI image service at " + socket + ": " + e.getMessage(), e);
        }
        return new ImageServiceProxy(server, upstream, group, socket);
    }

    /** Keeps a pull's credentials for its image's registry; a request it cannot read goes on all the same. */
    static void keepCredentials(byte[] request, HelperCredentials credentials) {
        try {
            PullImageRequest pull = PullImageRequest.parseFrom(request);
            AuthConfig auth = pull.getAuth();
            Credentials c = credentials(auth);
            if (c != null && !pull.getImage().getImage().isEmpty()) {
                credentials.put(ImageReference.parse(pull.getImage().getImage()).registry(), c);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warning("a PullImage whose credentials cannot be read or kept goes on without them: " + e.getMessage());
        }
    }

    /** A CRI AuthConfig as credentials: an identity token, a user and password, or {@code auth} (base64 user:password). */
    static Credentials credentials(AuthConfig auth) {
        if (!auth.getIdentityToken().isEmpty()) {
            return Credentials.identityToken(auth.getIdentityToken());
        }
        if (!auth.getUsername().isEmpty()) {
            return Credentials.basic(auth.getUsername(), auth.getPassword());
        }
        if (!auth.getAuth().isEmpty()) {
            String decoded = new String(Base64.getDecoder().decode(auth.getAuth()), StandardCharsets.UTF_8);
            int colon = decoded.indexOf(':');
            return colon < 0 ? null : Credentials.basic(decoded.substring(0, colon), decoded.substring(colon + 1));
        }
        return null;
    }

    public Path socket() {
        return socket;
    }

    @Override
    public void close() {
        server.shutdownNow();
        containerd.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
            containerd.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            // the next start removes it
        }
    }
}
