package dev.starling.mount;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP proxy in front of a registry that can be told to stop passing the registry's answers on
 * (mid-body, connections left open): a wedged registry, as a hung load balancer makes one.
 */
public final class StallingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int targetPort;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private volatile boolean stalled;

    public StallingProxy(int targetPort) throws IOException {
        this.targetPort = targetPort;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofPlatform().daemon().name("stalling-proxy").start(this::accept);
    }

    public int port() {
        return server.getLocalPort();
    }

    public void stall(boolean on) {
        synchronized (this) {
            stalled = on;
            notifyAll();
        }
    }

    private void accept() {
        try {
            while (true) {
                Socket client = server.accept();
                Socket upstream = new Socket(InetAddress.getLoopbackAddress(), targetPort);
                sockets.add(client);
                sockets.add(upstream);
                Thread.ofPlatform().daemon().start(() -> pump(client, upstream, false));
                Thread.ofPlatform().daemon().start(() -> pump(upstream, client, true));
            }
        } catch (IOException closed) {
            // closed
        }
    }

    private void pump(Socket from, Socket to, boolean answers) {
        byte[] buf = new byte[8192];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            for (int n; (n = in.read(buf)) > 0; ) {
                if (answers) {
                    synchronized (this) {
                        while (stalled) {
                            wait();
                        }
                    }
                }
                out.write(buf, 0, n);
                out.flush();
            }
        } catch (IOException | InterruptedException closed) {
            // either side went away
        } finally {
            try {
                to.shutdownOutput();
            } catch (IOException ignored) {
                // already closed
            }
        }
    }

    @Override
    public void close() throws IOException {
        stall(false);
        server.close();
        for (Socket s : sockets) {
            s.close();
        }
    }
}
