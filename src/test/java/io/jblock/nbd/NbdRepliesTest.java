package io.jblock.nbd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/** Replies from many workers at once over a real socket: each whole, each exactly once, none left behind. */
class NbdRepliesTest {
    @TempDir
    Path dir;

    private SocketChannel client;
    private SocketChannel server;

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

    private static final int THREADS = 8;
    private static final int PER_THREAD = 5_000;
    private static final int DATA = 512;

    @Test
    void concurrentRepliesArriveWholeAndEachExactlyOnce() throws Exception {
        long seed = System.nanoTime();
        System.out.println("NbdRepliesTest seed " + seed);
        NbdReplies replies = new NbdReplies(NbdTransport.of(server));
        AtomicReference<Throwable> failed = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            int id = t;
            workers.add(Thread.ofPlatform().start(() -> {
                Random rnd = new Random(seed + id);
                ByteBuffer data = ByteBuffer.allocateDirect(DATA);
                try {
                    for (int i = 0; i < PER_THREAD; i++) {
                        long cookie = (long) id * PER_THREAD + i;
                        // The cookie's kind tells the reader what follows: 0 simple, 1 simple + data, 2 NONE,
                        // 3 OFFSET_DATA, 4 simple error.
                        switch (rnd.nextInt(5)) {
                            case 0 -> replies.simple(cookie << 3, 0, null);
                            case 1 -> replies.simple(cookie << 3 | 1, 0, data.clear());
                            case 2 -> replies.none(cookie << 3 | 2);
                            case 3 -> replies.offsetData(cookie << 3 | 3, true, 4096, data.clear());
                            default -> replies.simple(cookie << 3 | 4, Nbd.EIO, null);
                        }
                    }
                } catch (Throwable e) {
                    failed.set(e);
                }
            }));
        }
        BitSet seen = new BitSet(THREADS * PER_THREAD);
        DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(Channels.newInputStream(client), 1 << 16));
        for (int n = 0; n < THREADS * PER_THREAD; n++) {
            int magic = in.readInt();
            long cookie;
            if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
                int error = in.readInt();
                cookie = in.readLong();
                int kind = (int) (cookie & 7);
                assertThat(kind).as("reply %d", n).isIn(0, 1, 4);
                assertThat(error).isEqualTo(kind == 4 ? Nbd.EIO : 0);
                if (kind == 1) {
                    in.readFully(new byte[DATA]);
                }
            } else {
                assertThat(magic).as("reply %d magic, seed %d", n, seed).isEqualTo(Nbd.STRUCTURED_REPLY_MAGIC);
                assertThat(in.readShort()).isEqualTo((short) Nbd.REPLY_FLAG_DONE);
                int type = in.readShort();
                cookie = in.readLong();
                int length = in.readInt();
                if ((cookie & 7) == 2) {
                    assertThat(type).isEqualTo(Nbd.REPLY_TYPE_NONE);
                    assertThat(length).isZero();
                } else {
                    assertThat(cookie & 7).isEqualTo(3);
                    assertThat(type).isEqualTo(Nbd.REPLY_TYPE_OFFSET_DATA);
                    assertThat(length).isEqualTo(8 + DATA);
                    assertThat(in.readLong()).isEqualTo(4096);
                    in.readFully(new byte[DATA]);
                }
            }
            int index = (int) (cookie >>> 3);
            assertThat(seen.get(index)).as("cookie %d twice, seed %d", index, seed).isFalse();
            seen.set(index);
        }
        for (Thread w : workers) {
            w.join();
        }
        assertThat(failed.get()).isNull();
        assertThat(seen.cardinality()).isEqualTo(THREADS * PER_THREAD);
        server.shutdownOutput();
        assertThat(in.read()).as("nothing after the last reply").isEqualTo(-1);
    }
}
