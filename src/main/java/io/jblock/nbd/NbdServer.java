package io.jblock.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An NBD server: many exports, one listening socket (TCP or Unix), one
 * platform thread per connection (and its workers, see NbdTransmission). As qemu-nbd: at most {@code maxClients}
 * connections are served at once (more wait to be accepted), and unless
 * {@code persistent} the server stops when its last client leaves.
 */
public final class NbdServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(NbdServer.class.getName());

    private final Map<String, NbdExport> exports;
    private final Semaphore slots;
    private final boolean persistent;
    private final long connectionBudget;
    private final PayloadBuffers buffers = new PayloadBuffers();
    private final AtomicInteger clients = new AtomicInteger();
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile ServerSocketChannel listener;

    /**
     * @param connectionBudget bytes of request and reply buffers each connection may hold at once
     *                         (see {@link MemoryBudget}); at least one maximum payload
     */
    public NbdServer(List<NbdExport> exports, int maxClients, boolean persistent, long connectionBudget) {
        LinkedHashMap<String, NbdExport> m = new LinkedHashMap<>();
        for (NbdExport e : exports) {
            m.put(e.name(), e);
        }
        this.exports = java.util.Collections.unmodifiableMap(m);
        this.slots = new Semaphore(maxClients);
        this.persistent = persistent;
        if (connectionBudget < Nbd.MAX_PAYLOAD) {
            throw new IllegalArgumentException("connection budget " + connectionBudget
                    + " is below one maximum payload (" + Nbd.MAX_PAYLOAD + ")");
        }
        this.connectionBudget = connectionBudget;
    }

    public Map<String, NbdExport> exports() {
        return exports;
    }

    /** Accepts and serves connections until {@link #stop()}, or (not persistent) the last client leaves. */
    public void serve(ServerSocketChannel listener) throws IOException {
        this.listener = listener;
        try {
            while (!stopping.get()) {
                slots.acquireUninterruptibly();
                SocketChannel ch;
                try {
                    ch = listener.accept();
                } catch (ClosedChannelException e) {
                    slots.release();
                    break;
                } catch (IOException e) {
                    slots.release();
                    if (stopping.get()) {
                        break;
                    }
                    throw e;
                }
                clients.incrementAndGet();
                noDelay(ch);
                // A platform thread, and the connection's workers with it (see NbdTransmission): the socket
                // stays in blocking mode, so a request is one read and a reply one write, no poller.
                Thread.ofPlatform().daemon(true).name("nbd-connection").start(() -> {
                    try {
                        serveConnection(NbdTransport.of(ch));
                    } finally {
                        slots.release();
                        if (clients.decrementAndGet() == 0 && !persistent) {
                            stop();
                        }
                    }
                });
            }
        } finally {
            stopped.countDown();
        }
    }

    /**
     * TCP_NODELAY on a TCP connection, as qemu-nbd and nbdkit set it: replies are small and go out
     * from several workers, and Nagle's algorithm would hold one back behind the peer's delayed ACK.
     */
    private static void noDelay(SocketChannel ch) {
        try {
            if (ch.getLocalAddress() instanceof InetSocketAddress) {
                ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "TCP_NODELAY not set: {0}", e.toString());
        }
    }

    /** Runs one connection's handshake and transmission on the calling thread, then closes it. */
    public void serveConnection(NbdTransport t) {
        LOG.log(System.Logger.Level.DEBUG, "client connected");
        try {
            NbdSession s = new NbdHandshake(t, exports).run();
            if (s != null) {
                LOG.log(System.Logger.Level.DEBUG, "client entered transmission for export ''{0}''{1}",
                        s.export().name(), s.structured() ? " with structured replies" : "");
                new NbdTransmission(t, s, new MemoryBudget(connectionBudget), buffers).run();
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "connection ended: {0}", e.toString());
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "connection failed", e);
        } finally {
            t.close();
            LOG.log(System.Logger.Level.DEBUG, "client disconnected");
        }
    }

    /** Stops accepting; connections already served run to their end. */
    public void stop() {
        if (stopping.compareAndSet(false, true)) {
            ServerSocketChannel l = listener;
            if (l != null) {
                try {
                    l.close();
                } catch (IOException ignored) {
                    // Closing the listener is how accept() is woken; nothing else to do.
                }
            }
        }
    }

    /** Waits until the accept loop has ended. */
    public void awaitStopped() throws InterruptedException {
        stopped.await();
    }

    @Override
    public void close() {
        stop();
    }
}
