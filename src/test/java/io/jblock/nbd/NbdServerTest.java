package io.jblock.nbd;

import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.testing.CountingEngine;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The server against a client that does exactly what the test says, including what a client must not do. */
class NbdServerTest {
    @TempDir
    Path dir;

    private NbdServer server;
    private Drive drive;
    private CountingEngine engine;
    private Path socket;

    private void start(String cache, boolean readOnly, int clients) throws Exception {
        start(cache, readOnly, clients, 4 << 20);
    }

    private void start(String cache, boolean readOnly, int clients, long size) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[4 << 20]);
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(size);
        }
        engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(),
                CountingEngine.provider(engine)));
        drive = opener.open(DriveConfig.parseDrive("file=" + img + ",format=raw,discard=unmap,cache=" + cache
                + (readOnly ? ",read-only=on" : "")));
        server = new NbdServer(List.of(new NbdExport("", "test disk", drive, clients > 1, true)), clients, true,
                MemoryBudget.DEFAULT_BYTES);
        socket = dir.resolve("nbd.sock");
        ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        l.bind(UnixDomainSocketAddress.of(socket));
        Thread.ofVirtual().start(() -> {
            try {
                server.serve(l);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.stop();
            server.awaitStopped();
        }
        if (drive != null) {
            drive.close();
        }
    }

    private NbdClient connect() throws IOException {
        NbdClient c = NbdClient.connectUnix(socket);
        c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        c.structuredReplies();
        c.metaContexts(true, "", List.of(Nbd.CONTEXT_BASE_ALLOCATION));
        c.info("", true);
        return c;
    }

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @ParameterizedTest(name = "cache={0}: {1} fdatasync for the flush")
    @CsvSource({"writeback, 1", "none, 1", "unsafe, 0"})
    void aFlushOnOneConnectionCoversWritesAnsweredOnAnother(String cache, long datasyncs) throws Exception {
        start(cache, false, 3);
        try (NbdClient writer = connect(); NbdClient flusher = connect(); NbdClient reader = connect()) {
            assertThat(writer.write(0, filled(4096, 0x5a), 0)).isZero();
            assertThat(writer.write(8192, filled(4096, 0x6b), 0)).isZero();
            assertThat(engine.datasyncs()).as("nothing durable before the flush").isZero();
            assertThat(flusher.flush()).as("flush acknowledged in every mode").isZero();
            assertThat(engine.datasyncs()).as("the flush reached the disk per the cache mode")
                    .isEqualTo(datasyncs);
            assertThat(reader.read(0, 4096)).isEqualTo(filled(4096, 0x5a));
            assertThat(reader.read(8192, 4096)).isEqualTo(filled(4096, 0x6b));
        }
    }

    @Test
    void fuaWritesAreDurableOnReplyUnlessUnsafe() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = connect()) {
            assertThat(c.write(0, filled(512, 1), Nbd.CMD_FLAG_FUA)).isZero();
            assertThat(engine.datasyncs()).isEqualTo(1);
        }
    }

    @Test
    void aBadRequestMagicDisconnectsThatClientOnlyAndOthersDataIsIntact() throws Exception {
        start("writeback", false, 2);
        try (NbdClient good = connect(); NbdClient bad = connect()) {
            assertThat(good.write(4096, filled(4096, 0x42), 0)).isZero();
            ByteBuffer junk = ByteBuffer.allocate(28).putInt(0, 0xdeadbeef); // a whole header, wrong magic
            bad.transport().writeFully(junk);
            assertThatThrownBy(() -> bad.readReply(0)).isInstanceOf(EOFException.class);
            assertThat(good.read(4096, 4096)).isEqualTo(filled(4096, 0x42));
            assertThat(good.write(0, filled(512, 0x43), 0)).isZero();
        }
    }

    @Test
    void aTruncatedHeaderEndsTheConnectionWithoutHarm() throws Exception {
        start("writeback", false, 2);
        try (NbdClient good = connect()) {
            NbdClient bad = connect();
            bad.transport().writeFully(ByteBuffer.allocate(10).putInt(0, Nbd.REQUEST_MAGIC)); // 10 of 28 bytes
            bad.close();
            assertThat(good.write(0, filled(4096, 7), 0)).isZero();
            assertThat(good.read(0, 4096)).isEqualTo(filled(4096, 7));
        }
    }

    @Test
    void oversizeAndOutOfRangeRequestsGetTheSpecsErrorsAndTheConnectionStaysInSync() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = connect()) {
            assertThat(c.command(Nbd.CMD_READ, 0, 0, Nbd.MAX_PAYLOAD + 1)).isEqualTo(Nbd.EINVAL);
            assertThat(c.command(Nbd.CMD_READ, 0, (4 << 20) - 100, 4096)).isEqualTo(Nbd.EINVAL);
            assertThat(c.write((4 << 20) - 100, filled(4096, 1), 0)).isEqualTo(Nbd.ENOSPC);
            assertThat(c.command(Nbd.CMD_WRITE_ZEROES, 0, 4 << 20, 1)).isEqualTo(Nbd.ENOSPC);
            assertThat(c.command(Nbd.CMD_TRIM, 0, -1L, 10)).isEqualTo(Nbd.EINVAL);
            assertThat(c.command(42, 0, 0, 0)).as("unknown command").isEqualTo(Nbd.EINVAL);
            assertThat(c.command(Nbd.CMD_FLUSH, Nbd.CMD_FLAG_FUA, 0, 0)).as("flag not allowed").isEqualTo(Nbd.EINVAL);
            // An oversize write's payload is drained, so the next request is read correctly.
            byte[] huge = new byte[Nbd.MAX_PAYLOAD + 4096];
            assertThat(c.write(0, huge, 0)).isEqualTo(Nbd.EINVAL);
            assertThat(c.write(0, filled(512, 9), 0)).isZero();
            assertThat(c.read(0, 512)).isEqualTo(filled(512, 9));
        }
    }

    @Test
    void writesToAReadOnlyExportFailWithEperm() throws Exception {
        start("writeback", true, 1);
        try (NbdClient c = connect()) {
            assertThat(c.write(0, filled(512, 1), 0)).isEqualTo(Nbd.EPERM);
            assertThat(c.command(Nbd.CMD_TRIM, 0, 0, 512)).isEqualTo(Nbd.EPERM);
            assertThat(c.command(Nbd.CMD_WRITE_ZEROES, 0, 0, 512)).isEqualTo(Nbd.EPERM);
            assertThat(c.read(0, 512)).isEqualTo(new byte[512]);
        }
        assertThat(engine.writes()).isZero();
    }

    @Test
    void optionsOutOfOrderAndUnknownOptionsAreRefusedWithoutLosingSync() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = NbdClient.connectUnix(socket)) {
            c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE);
            // SET_META_CONTEXT before structured replies: invalid.
            assertThatThrownBy(() -> c.metaContexts(true, "", List.of(Nbd.CONTEXT_BASE_ALLOCATION)))
                    .isInstanceOfSatisfying(NbdClient.OptionError.class,
                            e -> assertThat(e.type).isEqualTo(Nbd.REP_ERR_INVALID));
            c.sendOption(99, ByteBuffer.wrap(new byte[100]));
            assertThatThrownBy(() -> c.readOptionReply(99)).isInstanceOfSatisfying(NbdClient.OptionError.class,
                    e -> assertThat(e.type).isEqualTo(Nbd.REP_ERR_UNSUP));
            c.sendOption(Nbd.OPT_STARTTLS, null);
            assertThatThrownBy(() -> c.readOptionReply(Nbd.OPT_STARTTLS))
                    .isInstanceOfSatisfying(NbdClient.OptionError.class,
                            e -> assertThat(e.type).isEqualTo(Nbd.REP_ERR_POLICY));
            c.sendOption(Nbd.OPT_LIST, ByteBuffer.allocate(Nbd.MAX_OPTION_LENGTH + 1));
            assertThatThrownBy(() -> c.readOptionReply(Nbd.OPT_LIST))
                    .isInstanceOfSatisfying(NbdClient.OptionError.class,
                            e -> assertThat(e.type).isEqualTo(Nbd.REP_ERR_TOO_BIG));
            assertThatThrownBy(() -> c.info("no-such-export", false))
                    .isInstanceOfSatisfying(NbdClient.OptionError.class,
                            e -> assertThat(e.type).isEqualTo(Nbd.REP_ERR_UNKNOWN));
            // Still in sync: the export can be listed and entered.
            assertThat(c.list()).containsExactly(new NbdClient.ExportEntry("", "test disk"));
            c.structuredReplies();
            Map<String, Integer> ctx = c.metaContexts(false, "", List.of("base:", "qemu:"));
            assertThat(ctx).containsOnlyKeys(Nbd.CONTEXT_BASE_ALLOCATION, Nbd.CONTEXT_ALLOCATION_DEPTH);
            NbdClient.ExportInfo info = c.info("", true);
            assertThat(info.size()).isEqualTo(4 << 20);
            assertThat(info.flags() & Nbd.FLAG_SEND_DF).isNotZero();
            assertThat(c.read(0, 16)).isEqualTo(new byte[16]);
        }
    }

    @Test
    void unknownClientFlagsCloseTheConnection() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = NbdClient.connectUnix(socket)) {
            c.sendClientFlags(0x80);
            assertThatThrownBy(() -> c.list()).isInstanceOf(IOException.class);
        }
    }

    @Test
    void manyRequestsInFlightAreAnsweredEvenOutOfOrder() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = connect()) {
            int n = 64;
            for (int i = 0; i < n; i++) {
                c.sendRequest(0, Nbd.CMD_WRITE, 1000 + i, i * 4096L, 4096, ByteBuffer.wrap(filled(4096, i)));
            }
            java.util.Set<Long> cookies = new java.util.HashSet<>();
            for (int i = 0; i < n; i++) {
                NbdClient.Reply r = c.readReply(0);
                assertThat(r.error()).isZero();
                cookies.add(r.cookie());
            }
            assertThat(cookies).hasSize(n);
            for (int i = 0; i < n; i++) {
                assertThat(c.read(i * 4096L, 4096)).isEqualTo(filled(4096, i));
            }
        }
    }

    @Test
    void blockStatusDescribesHolesAndDataAndReqOneGivesOneExtent() throws Exception {
        start("writeback", false, 1);
        drive.discard(0, drive.length()); // all hole (the file was written full of zeroes)
        try (NbdClient c = NbdClient.connectUnix(socket)) {
            c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
            c.structuredReplies();
            Map<String, Integer> ids = c.metaContexts(true, "", List.of(Nbd.CONTEXT_BASE_ALLOCATION,
                    Nbd.CONTEXT_ALLOCATION_DEPTH));
            c.info("", true);
            assertThat(c.write(64 << 10, filled(64 << 10, 1), 0)).isZero();
            for (boolean one : new boolean[] {false, true}) {
                c.sendRequest(one ? Nbd.CMD_FLAG_REQ_ONE : 0, Nbd.CMD_BLOCK_STATUS, 9, 0, 256 << 10, null);
                Map<Integer, List<int[]>> byContext = new java.util.HashMap<>();
                NbdClient.Reply r;
                do {
                    r = c.readReply(0);
                    assertThat(r.type()).isEqualTo(Nbd.REPLY_TYPE_BLOCK_STATUS);
                    ByteBuffer p = ByteBuffer.wrap(r.payload());
                    List<int[]> extents = new java.util.ArrayList<>();
                    int id = p.getInt();
                    while (p.hasRemaining()) {
                        extents.add(new int[] {p.getInt(), p.getInt()});
                    }
                    byContext.put(id, extents);
                } while ((r.flags() & Nbd.REPLY_FLAG_DONE) == 0);
                List<int[]> base = byContext.get(ids.get(Nbd.CONTEXT_BASE_ALLOCATION));
                List<int[]> depth = byContext.get(ids.get(Nbd.CONTEXT_ALLOCATION_DEPTH));
                if (one) {
                    assertThat(base).hasSize(1);
                    assertThat(base.getFirst()).containsExactly(64 << 10, Nbd.STATE_HOLE | Nbd.STATE_ZERO);
                    assertThat(depth).hasSize(1);
                } else {
                    assertThat(base).extracting(e -> e[0] + ":" + e[1]).containsExactly(
                            (64 << 10) + ":" + (Nbd.STATE_HOLE | Nbd.STATE_ZERO), (64 << 10) + ":0",
                            (128 << 10) + ":" + (Nbd.STATE_HOLE | Nbd.STATE_ZERO));
                    assertThat(depth).extracting(e -> e[0] + ":" + e[1]).containsExactly((256 << 10) + ":1");
                }
            }
        }
    }

    @Test
    void aClientThatNeverReadsItsRepliesCannotStarveTheOthers() throws Exception {
        start("writeback", false, 2, 64 << 20);
        try (NbdClient greedy = connect(); NbdClient polite = connect()) {
            // Pipeline far more reply data than any buffer holds, and never read it.
            for (int i = 0; i < Nbd.MAX_IN_FLIGHT; i++) {
                greedy.sendRequest(Nbd.CMD_FLAG_DF, Nbd.CMD_READ, i, 0, Nbd.MAX_PAYLOAD, null);
            }
            var other = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    assertThat(polite.write(0, filled(4096, 0x21), 0)).isZero();
                    return polite.read(0, 4096);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            // A liveness bound, not a speed assertion: the other client is served at all.
            assertThat(other.get(60, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(filled(4096, 0x21));
        }
    }

    @Test
    void aSmallReadOfAHoleComesAsDataAndALargeOneAsAHoleChunk() throws Exception {
        start("writeback", false, 1);
        drive.discard(0, drive.length()); // all hole
        try (NbdClient c = connect()) {
            c.sendRequest(0, Nbd.CMD_READ, 1, 8192, 4096, null);
            NbdClient.Reply small = c.readReply(0);
            assertThat(small.type()).as("below the sparse-read size, no block-status probe")
                    .isEqualTo(Nbd.REPLY_TYPE_OFFSET_DATA);
            assertThat(small.flags() & Nbd.REPLY_FLAG_DONE).isNotZero();
            ByteBuffer p = ByteBuffer.wrap(small.payload());
            assertThat(p.getLong()).isEqualTo(8192);
            assertThat(Arrays.copyOfRange(small.payload(), 8, small.payload().length)).isEqualTo(new byte[4096]);

            c.sendRequest(0, Nbd.CMD_READ, 2, 0, NbdTransmission.SPARSE_MIN, null);
            NbdClient.Reply large = c.readReply(0);
            assertThat(large.type()).isEqualTo(Nbd.REPLY_TYPE_OFFSET_HOLE);
            assertThat(large.flags() & Nbd.REPLY_FLAG_DONE).isNotZero();
            assertThat(ByteBuffer.wrap(large.payload()).getInt(8)).isEqualTo(NbdTransmission.SPARSE_MIN);
        }
    }

    @Test
    void discDrainsInFlightRequestsBeforeClosing() throws Exception {
        start("writeback", false, 1);
        try (NbdClient c = connect()) {
            for (int i = 0; i < 16; i++) {
                c.sendRequest(0, Nbd.CMD_WRITE, i, i * 65536L, 65536, ByteBuffer.wrap(filled(65536, i + 1)));
            }
            c.disconnect();
            for (int i = 0; i < 16; i++) {
                assertThat(c.readReply(0).error()).isZero();
            }
            assertThatThrownBy(() -> c.readReply(0)).isInstanceOf(EOFException.class);
        }
        ByteBuffer b = ByteBuffer.allocate(65536);
        drive.read(15 * 65536L, b);
        assertThat(b.array()).isEqualTo(filled(65536, 16));
    }
}
