package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.options.DriverRegistry;
import io.jblock.block.WriteFlags;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Predicate;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The order in which qcow2 metadata and data reach the image file, recorded
 * at the engine with the bytes of every write: a refcount block counting a
 * new cluster before any table that points at it; copy-on-write data before
 * the L2 entry that points at it; when freeing, the L2 entry before the
 * refcount drops.
 */
class Qcow2WriteOrderTest {
    private static final int CLUSTER = 65536;

    @TempDir
    Path dir;

    /** One write that reached the image file, with its bytes. */
    record Write(long offset, byte[] bytes) {
        boolean covers(long at, int n) {
            return offset <= at && at + n <= offset + bytes.length;
        }

        long longAt(long at) {
            return ByteBuffer.wrap(bytes).getLong((int) (at - offset));
        }

        int u16At(long at) {
            return Short.toUnsignedInt(ByteBuffer.wrap(bytes).getShort((int) (at - offset)));
        }
    }

    /** Records every write to the image file, in order. */
    static final class RecordingEngine implements IoEngine {
        final List<Write> writes = Collections.synchronizedList(new ArrayList<>());

        @Override
        public String name() {
            return "threads";
        }

        @Override
        public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
            return new ForwardingEngineFile(ThreadsEngine.INSTANCE.open(path, readOnly, direct)) {
                @Override
                public int write(ByteBuffer src, long pos) throws IOException {
                    byte[] b = new byte[src.remaining()];
                    src.duplicate().get(b);
                    int n = super.write(src, pos);
                    writes.add(new Write(pos, java.util.Arrays.copyOf(b, n)));
                    return n;
                }
            };
        }
    }

    @Test
    void refcountsBeforeTablesCowDataBeforeItsEntryAndL2BeforeTheRefcountDrops() throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "64M");
        RecordingEngine engine = new RecordingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> engine));
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,discard=unmap"))) {
            // A partial write: the rest of the new cluster is zeroed in the file, then the data written.
            d.write(4096, ByteBuffer.wrap(new byte[]{1, 2, 3}), WriteFlags.NONE);
            d.flush();
        }
        ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(img));
        long l1 = h.getLong(40);
        long reftable = h.getLong(48);
        long refblock = h.getLong((int) reftable);
        long l2 = h.getLong((int) l1) & Qcow2L2Entry.OFFSET_MASK;
        long host = h.getLong((int) l2) & Qcow2L2Entry.OFFSET_MASK;
        assertThat(host).as("data cluster").isPositive();
        List<Write> w = List.copyOf(engine.writes);

        int l2Counted = first(w, x -> x.covers(refblock + (l2 / CLUSTER) * 2, 2)
                && x.u16At(refblock + (l2 / CLUSTER) * 2) == 1);
        int l1Points = first(w, x -> x.covers(l1, 8) && (x.longAt(l1) & Qcow2L2Entry.OFFSET_MASK) == l2);
        int hostCounted = first(w, x -> x.covers(refblock + (host / CLUSTER) * 2, 2)
                && x.u16At(refblock + (host / CLUSTER) * 2) == 1);
        int data = first(w, x -> x.covers(host + 4096, 3));
        int l2Points = first(w, x -> x.covers(l2, 8) && (x.longAt(l2) & Qcow2L2Entry.OFFSET_MASK) == host);
        assertThat(l2Counted).as("refcount of the new L2 table written").isNotNegative();
        assertThat(l2Counted).as("the L2 table's refcount before the L1 entry").isLessThan(l1Points);
        assertThat(hostCounted).as("the data cluster's refcount before the L2 entry")
                .isNotNegative().isLessThan(l2Points);
        assertThat(data).as("the data before the L2 entry")
                .isNotNegative().isLessThan(l2Points);

        // Now free the cluster: the L2 entry must reach the file before its refcount drops.
        engine.writes.clear();
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,discard=unmap"))) {
            d.discard(0, CLUSTER);
            d.flush();
        }
        List<Write> f = List.copyOf(engine.writes);
        int l2Cleared = first(f, x -> x.covers(l2, 8) && (x.longAt(l2) & Qcow2L2Entry.OFFSET_MASK) == 0);
        int hostFreed = first(f, x -> x.covers(refblock + (host / CLUSTER) * 2, 2)
                && x.u16At(refblock + (host / CLUSTER) * 2) == 0);
        assertThat(l2Cleared).as("the L2 entry no longer points at the cluster").isNotNegative();
        assertThat(hostFreed).as("the refcount drops after the L2 entry is written")
                .isNotNegative().isGreaterThan(l2Cleared);
        assertThat(ByteBuffer.wrap(Files.readAllBytes(img)).getLong((int) l2)).as("v3 discard: zero flag")
                .isEqualTo(Qcow2L2Entry.ZERO);
    }

    private static int first(List<Write> writes, Predicate<Write> p) {
        for (int i = 0; i < writes.size(); i++) {
            if (p.test(writes.get(i))) {
                return i;
            }
        }
        return -1;
    }
}
