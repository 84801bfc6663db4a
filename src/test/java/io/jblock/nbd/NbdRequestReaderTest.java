package io.jblock.nbd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Requests read through the receive buffer over a real Unix socket, however the client splits its writes. */
class NbdRequestReaderTest {
    @TempDir
    Path dir;

    private SocketChannel client;
    private SocketChannel server;
    private final AtomicInteger reads = new AtomicInteger();

    @BeforeEach
    void connect() throws IOException {
        try (ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            l.bind(UnixDomainSocketAddress.of(dir.resolve("r.sock")));
            client = SocketChannel.open(l.getLocalAddress());
            server = l.accept();
        }
    }

    @AfterEach
    void close() throws IOException {
        client.close();
        server.close();
    }

    /** The server side as a transport that counts its read calls. */
    private NbdTransport serverSide() {
        return NbdTransport.of(new ByteChannel() {
            @Override
            public int read(ByteBuffer dst) throws IOException {
                reads.incrementAndGet();
                return server.read(dst);
            }

            @Override
            public int write(ByteBuffer src) throws IOException {
                return server.write(src);
            }

            @Override
            public boolean isOpen() {
                return server.isOpen();
            }

            @Override
            public void close() throws IOException {
                server.close();
            }
        });
    }

    private static byte[] wire(NbdRequest r, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(NbdRequest.SIZE + (payload == null ? 0 : payload.length));
        r.encode(b);
        if (payload != null) {
            b.put(payload);
        }
        return b.array();
    }

    @Test
    void randomRequestsAndPayloadsSurviveAnySplitOfTheStream() throws Exception {
        long seed = System.nanoTime();
        System.out.println("NbdRequestReaderTest seed " + seed);
        Random rnd = new Random(seed);
        List<NbdRequest> sent = new ArrayList<>();
        List<byte[]> payloads = new ArrayList<>();
        java.io.ByteArrayOutputStream stream = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < 300; i++) {
            int kind = rnd.nextInt(4);
            int type = kind == 0 ? Nbd.CMD_READ : Nbd.CMD_WRITE;
            int length = switch (kind) {
                case 1 -> 4096;
                case 2 -> rnd.nextInt(600 << 10); // longer than the buffer, or than half of it
                default -> 1 + rnd.nextInt(8192);
            };
            NbdRequest r = new NbdRequest(rnd.nextInt(1 << 16), type, rnd.nextLong(), rnd.nextLong(), length);
            byte[] p = null;
            if (type == Nbd.CMD_WRITE) {
                p = new byte[length];
                rnd.nextBytes(p);
            }
            sent.add(r);
            payloads.add(p);
            stream.writeBytes(wire(r, p));
        }
        byte[] all = stream.toByteArray();
        Thread writer = Thread.ofPlatform().start(() -> {
            try {
                Random split = new Random(seed + 1);
                int pos = 0;
                while (pos < all.length) {
                    int n = Math.min(all.length - pos, 1 + split.nextInt(split.nextBoolean() ? 40 : 200_000));
                    ByteBuffer b = ByteBuffer.wrap(all, pos, n);
                    while (b.hasRemaining()) {
                        client.write(b);
                    }
                    pos += n;
                }
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        for (int i = 0; i < sent.size(); i++) {
            NbdRequest r = reader.next();
            assertThat(r).as("request %d, seed %d", i, seed).isEqualTo(sent.get(i));
            if (r.hasPayload()) {
                ByteBuffer p = ByteBuffer.allocateDirect((int) r.length());
                if (i % 5 == 0) {
                    reader.skipPayload(r.length());
                    continue;
                }
                reader.readPayload(p);
                assertThat(p.hasRemaining()).isFalse();
                byte[] got = new byte[p.capacity()];
                p.flip().get(got);
                assertThat(got).as("payload %d, seed %d", i, seed).isEqualTo(payloads.get(i));
            }
        }
        writer.join();
        assertThat(reader.buffered()).isZero();
    }

    @Test
    void sixteenPipelinedWritesTakeFewerReadsThanRequests() throws Exception {
        byte[] payload = new byte[4096];
        for (int i = 0; i < 16; i++) {
            ByteBuffer b = ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_WRITE, i, i * 4096L, 4096), payload));
            while (b.hasRemaining()) {
                client.write(b);
            }
        }
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        ByteBuffer p = ByteBuffer.allocateDirect(4096);
        for (int i = 0; i < 16; i++) {
            assertThat(reader.next().cookie()).isEqualTo(i);
            reader.readPayload(p.clear());
        }
        // Two reads per request (header, payload) before the receive buffer; now one per buffer fill.
        assertThat(reads.get()).isLessThan(16);
    }

    /**
     * After a payload read straight into its buffer, the next header is read alone: a stream of large
     * writes never brings a payload's first bytes into the receive buffer to be copied out again.
     */
    @Test
    void afterALargePayloadTheNextHeaderIsReadAloneAndItsPayloadIsNotCopied() throws Exception {
        int count = 4;
        int length = 1 << 20;
        List<byte[]> payloads = new ArrayList<>();
        Random rnd = new Random(count);
        for (int i = 0; i < count; i++) {
            byte[] p = new byte[length];
            rnd.nextBytes(p);
            payloads.add(p);
        }
        Thread writer = Thread.ofPlatform().start(() -> {
            try {
                for (int i = 0; i < count; i++) {
                    ByteBuffer b = ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_WRITE, i, (long) i * length, length),
                            payloads.get(i)));
                    while (b.hasRemaining()) {
                        client.write(b);
                    }
                }
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        ByteBuffer p = ByteBuffer.allocateDirect(length);
        long afterFirst = 0;
        for (int i = 0; i < count; i++) {
            if (i > 0) {
                // Give the client time to write ahead, so that a greedy read would take payload bytes too.
                Thread.sleep(50);
            }
            NbdRequest r = reader.next();
            assertThat(r.cookie()).isEqualTo(i);
            reader.readPayload(p.clear());
            byte[] got = new byte[length];
            p.flip().get(got);
            assertThat(got).as("payload %d", i).isEqualTo(payloads.get(i));
            if (i == 0) {
                afterFirst = reader.copied();
            }
        }
        writer.join();
        assertThat(reader.copied()).as("payload bytes copied after the first request").isEqualTo(afterFirst);
        assertThat(reader.buffered()).isZero();
    }

    /** A small request after a large payload puts the reader back to taking what the client pipelined. */
    @Test
    void smallWritesAfterALargeOneAreReadThroughTheBufferAgain() throws Exception {
        int big = 1 << 20;
        Thread writer = Thread.ofPlatform().start(() -> {
            try {
                ByteBuffer b = ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_WRITE, 100, 0, big), new byte[big]));
                while (b.hasRemaining()) {
                    client.write(b);
                }
                for (int i = 0; i < 16; i++) {
                    b = ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_WRITE, i, i * 4096L, 4096), new byte[4096]));
                    while (b.hasRemaining()) {
                        client.write(b);
                    }
                }
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        assertThat(reader.next().cookie()).isEqualTo(100);
        reader.readPayload(ByteBuffer.allocateDirect(big));
        writer.join();
        int before = reads.get();
        ByteBuffer p = ByteBuffer.allocateDirect(4096);
        for (int i = 0; i < 16; i++) {
            assertThat(reader.next().cookie()).isEqualTo(i);
            reader.readPayload(p.clear());
            assertThat(p.hasRemaining()).isFalse();
        }
        // The first small header alone, then one read for the rest (16 * 4124 bytes fit the buffer).
        assertThat(reads.get() - before).isLessThanOrEqualTo(3);
    }

    @Test
    void aWrongMagicIsNullAndTheStreamEndsWithEof() throws Exception {
        ByteBuffer b = ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_READ, 1, 0, 512), null));
        b.putInt(0, 0xdeadbeef);
        client.write(b);
        client.write(ByteBuffer.wrap(new byte[] {0x25, 0x60}));
        client.shutdownOutput();
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        assertThat(reader.next()).isNull();
        assertThatThrownBy(reader::next).as("a header cut short by the close").isInstanceOf(EOFException.class);
    }

    @Test
    void aPayloadCutShortByTheCloseIsEof() throws Exception {
        client.write(ByteBuffer.wrap(wire(new NbdRequest(0, Nbd.CMD_WRITE, 1, 0, 100_000), new byte[70_000])));
        client.shutdownOutput();
        NbdRequestReader reader = new NbdRequestReader(serverSide());
        NbdRequest r = reader.next();
        assertThat(r.length()).isEqualTo(100_000);
        assertThatThrownBy(() -> reader.readPayload(ByteBuffer.allocate(100_000))).isInstanceOf(EOFException.class);
    }
}
