package io.jblock.format.qcow2;

import io.jblock.block.BlockNode;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.filter.logwrites.LogEntry;
import io.jblock.filter.logwrites.WriteLog;
import io.jblock.options.GraphOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Reverting to a snapshot frees the clusters only the old active layer used, and with
 * pass-discard-snapshot (on by default) discards them in the file. The new L1 table must be
 * on the disk before that discard: a power cut could otherwise leave the old L1 table in use,
 * pointing at clusters already punched out (QEMU writes the L1 table with bdrv_pwrite_sync
 * before it drops the old references).
 */
class Qcow2RevertDiscardOrderTest {
    @TempDir
    Path tmp;

    @Test
    void theRevertedL1TableIsFlushedBeforeTheOldClustersAreDiscarded() throws Exception {
        Path img = tmp.resolve("d.qcow2");
        Path log = Files.createFile(tmp.resolve("d.log"));
        Peers.Result r = Peers.run(60, List.of(Peers.require("qemu-img"), "create", "-f", "qcow2", img.toString(), "4M"));
        assertThat(r.exit()).as(r.err()).isZero();
        long l1Offset;
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(40);
            l1Offset = f.readLong();
        }
        try (BlockNode n = GraphOpener.standard().open(null, NodeOptions.of("driver", "qcow2", "file.driver",
                "blklogwrites", "file.file.driver", "file", "file.file.filename", img.toString(),
                "file.log.driver", "file", "file.log.filename", log.toString()), NodeSettings.defaults())) {
            n.write(0, fill(1, 3 << 16), 0);
            Qcow2InternalSnapshots snapshots = ((Qcow2Node) n).internalSnapshots();
            snapshots.create("s", 1, 0);
            n.write(0, fill(2, 3 << 16), 0); // copy-on-write: three clusters only the active layer uses
            n.flush();
            snapshots.apply("s");
        }
        WriteLog.Contents c = WriteLog.read(log);
        long l1Sector = l1Offset / 512;
        long lastL1Write = -1;
        boolean flushedSince = true;
        boolean sawDiscard = false;
        for (LogEntry e : c.entries()) {
            if (e.isWrite() && e.sector() <= l1Sector && l1Sector < e.sector() + e.sectors()) {
                lastL1Write = e.index();
                flushedSince = e.isFua();
            } else if (e.isFlush()) {
                flushedSince = true;
            } else if (e.isDiscard()) {
                sawDiscard = true;
                assertThat(flushedSince).as("discard (entry %d) of sectors %d+%d after the L1 write (entry %d)"
                        + " with no flush between", e.index(), e.sector(), e.sectors(), lastL1Write).isTrue();
            }
        }
        assertThat(sawDiscard).as("the revert discards the freed clusters").isTrue();
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as(check.out() + check.err()).isZero();
    }

    private static ByteBuffer fill(int value, int length) {
        ByteBuffer b = ByteBuffer.allocate(length);
        while (b.hasRemaining()) {
            b.put((byte) value);
        }
        return b.flip();
    }
}
