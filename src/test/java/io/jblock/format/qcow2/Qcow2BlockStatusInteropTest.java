package io.jblock.format.qcow2;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jblock.block.BlockStatus;
import io.jblock.block.Drive;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static io.jblock.format.qcow2.QemuImages.randomWrites;
import static org.assertj.core.api.Assertions.assertThat;

/** Block status of qcow2 images and chains, compared with {@code qemu-img map --output=json}. */
class Qcow2BlockStatusInteropTest {
    private static final long SIZE = 8L << 20;

    @TempDir
    Path dir;

    /** One run of qemu-img map's JSON, without the host offset. */
    record Run(long start, long length, int depth, boolean present, boolean zero, boolean data) {
    }

    @Test
    void threeDeepChainMapsAsQemuImgMapsIt() throws Exception {
        Path base = dir.resolve("base.qcow2");
        Path mid = dir.resolve("mid.qcow2");
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid.toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top.toString());
        long seed = new Random().nextLong();
        qemuIo(base, randomWrites(seed, SIZE, 65536, 400_000, 12, true));
        qemuIo(mid, randomWrites(seed + 1, SIZE, 65536, 400_000, 12, true));
        qemuIo(top, randomWrites(seed + 2, SIZE, 65536, 400_000, 12, true));
        assertMapsAsQemu(top, 3);
    }

    @Test
    void allocationDepthIsWhatQemuNbdExportsAsQemuAllocationDepth() throws Exception {
        Path base = dir.resolve("dbase.qcow2");
        Path mid = dir.resolve("dmid.qcow2");
        Path top = dir.resolve("dtop.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
        qemuImg("create", "-q", "-f", "qcow2", "-b", "dbase.qcow2", "-F", "qcow2", mid.toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "dmid.qcow2", "-F", "qcow2", top.toString());
        long seed = new Random().nextLong();
        qemuIo(base, randomWrites(seed, SIZE, 65536, 400_000, 12, true));
        qemuIo(mid, randomWrites(seed + 1, SIZE, 65536, 400_000, 12, true));
        qemuIo(top, randomWrites(seed + 2, SIZE, 65536, 400_000, 12, true));
        Path socket = dir.resolve("nbd.sock");
        List<long[]> expected = new ArrayList<>();
        try (Peers.Server nbd = Peers.Server.start(List.of(Peers.require("qemu-nbd"), "-t", "-r", "-A", "-f", "qcow2",
                "-k", socket.toString(), top.toString()), socket, 0)) {
            Peers.Result r = Peers.run(60, List.of(Peers.require("nbdinfo"), "--json",
                    "--map=qemu:allocation-depth", "nbd+unix:///?socket=" + socket)).ok();
            for (JsonNode e : new ObjectMapper().readTree(r.out())) {
                addDepth(expected, e.get("offset").asLong(), e.get("length").asLong(), e.get("type").asLong());
            }
        }
        List<long[]> actual = new ArrayList<>();
        try (Drive d = QemuImages.open(top)) {
            for (long off = 0; off < SIZE; ) {
                BlockStatus s = d.blockStatus(off, SIZE - off);
                addDepth(actual, off, s.length(), s.depth());
                off += s.length();
            }
        }
        assertThat(actual).as("(offset, length, depth) runs, seed %d", seed)
                .usingElementComparator(java.util.Arrays::compare).isEqualTo(expected);
    }

    private static void addDepth(List<long[]> runs, long offset, long length, long depth) {
        if (!runs.isEmpty()) {
            long[] last = runs.getLast();
            if (last[0] + last[1] == offset && last[2] == depth) {
                last[1] += length;
                return;
            }
        }
        runs.add(new long[] {offset, length, depth});
    }

    @Test
    void rawBackingFileMapsAndReadsAsQemuSeesIt() throws Exception {
        Path base = dir.resolve("rbase.raw");
        Path top = dir.resolve("rtop.qcow2");
        qemuImg("create", "-q", "-f", "raw", base.toString(), Long.toString(SIZE));
        Peers.run(60, List.of(Peers.require("qemu-io"), "-f", "raw", "-c", "write -P 0x19 1M 192k",
                base.toString())).ok();
        qemuImg("create", "-q", "-f", "qcow2", "-b", "rbase.raw", "-F", "raw", top.toString());
        qemuIo(top, List.of("write -P 0x20 1088k 64k", "write -z 4M 64k"));
        assertMapsAsQemu(top, 2);
        QemuImages.assertReadsAsQemu(top, 11);
    }

    @Test
    void zeroClustersMapAsZeroAllocatedInTheirLayer() throws Exception {
        Path base = dir.resolve("zbase.qcow2");
        Path top = dir.resolve("ztop.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
        qemuImg("create", "-q", "-f", "qcow2", "-b", "zbase.qcow2", "-F", "qcow2", top.toString());
        qemuIo(base, List.of("write -P 0x55 0 2M"));
        qemuIo(top, List.of("write -z 64k 128k", "write -z 1M 64k", "write -P 0x66 3M 64k", "write -z -u 4M 1M"));
        List<Run> runs = assertMapsAsQemu(top, 2);
        assertThat(runs).contains(new Run(65536, 131072, 0, true, true, false));
        try (Drive d = QemuImages.open(top)) {
            BlockStatus s = d.blockStatus(65536, 131072);
            assertThat(s.isAllocated()).isTrue();
            assertThat(s.isZero()).isTrue();
            assertThat(s.depth()).isEqualTo(1);
            BlockStatus below = d.blockStatus(0, 65536);
            assertThat(below.isAllocated()).as("data of the backing file is not allocated in the top").isFalse();
            assertThat(below.depth()).isEqualTo(2);
            BlockStatus nowhere = d.blockStatus(6 << 20, 65536);
            assertThat(nowhere.depth()).isZero();
            assertThat(nowhere.isZero()).isTrue();
        }
    }

    @Test
    void extendedL2SubclustersMapAsQemuImgMapsThem() throws Exception {
        Path base = dir.resolve("xbase.qcow2");
        Path top = dir.resolve("xtop.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=128k", base.toString(),
                Long.toString(SIZE));
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=128k", "-b", "xbase.qcow2",
                "-F", "qcow2", top.toString());
        long seed = new Random().nextLong();
        qemuIo(base, randomWrites(seed, SIZE, 4096, 40_000, 30, true));
        qemuIo(top, randomWrites(seed + 1, SIZE, 4096, 40_000, 30, true));
        assertMapsAsQemu(top, 2);
        QemuImages.assertReadsAsQemu(top, seed);
    }

    @Test
    void preallocatedMetadataMapsAsQemuImgMapsIt() throws Exception {
        Path img = dir.resolve("pre.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", img.toString(), Long.toString(SIZE));
        qemuIo(img, List.of("write -P 0x12 1M 256k", "write -z 3M 64k"));
        assertMapsAsQemu(img, 1);
    }

    @Test
    void dataOnHolesIsDataUnlessTheMetadataIsPreallocated() throws Exception {
        Path img = dir.resolve("holes.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), Long.toString(SIZE));
        // 512 bytes into fresh 64 KiB clusters: QEMU zero-fills the rest of each cluster, often as a hole.
        qemuIo(img, List.of("write -P 0x71 0 512", "write -P 0x72 1M 512", "write -P 0x73 2M 4k"));
        assertMapsAsQemu(img, 1);
    }

    @Test
    void rawExternalDataFileMapsAsQemuImgMapsIt() throws Exception {
        Path img = dir.resolve("dr.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("dr.data") + ",data_file_raw=on",
                img.toString(), Long.toString(SIZE));
        qemuIo(img, List.of("write -P 0x21 64k 64k", "write -z 1M 64k", "write -P 0x22 3M 100k"));
        assertMapsAsQemu(img, 1);
        QemuImages.assertReadsAsQemu(img, 7);
    }

    @Test
    void compressedClustersMapAsData() throws Exception {
        Path src = dir.resolve("csrc.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", src.toString(), Long.toString(SIZE));
        qemuIo(src, List.of("write -P 0x31 0 1M", "write -z 2M 1M", "write -P 0x32 5M 300k"));
        Path img = dir.resolve("c.qcow2");
        qemuImg("convert", "-c", "-O", "qcow2", src.toString(), img.toString());
        assertMapsAsQemu(img, 1);
    }

    /** Compares jblock's runs with qemu-img map's, both merged where neighbours agree; returns them. */
    static List<Run> assertMapsAsQemu(Path image, int chainLength) throws Exception {
        JsonNode map = new ObjectMapper().readTree(qemuImg("map", "--output=json", image.toString()).out());
        List<Run> expected = new ArrayList<>();
        for (JsonNode e : map) {
            add(expected, new Run(e.get("start").asLong(), e.get("length").asLong(), e.get("depth").asInt(),
                    e.get("present").asBoolean(), e.get("zero").asBoolean(), e.get("data").asBoolean()));
        }
        List<Run> actual = new ArrayList<>();
        try (Drive d = QemuImages.open(image)) {
            long size = d.length();
            for (long off = 0; off < size; ) {
                BlockStatus s = d.blockStatus(off, size - off);
                boolean present = s.depth() > 0;
                int depth = present ? s.depth() - 1 : chainLength - 1;
                add(actual, new Run(off, s.length(), depth, present, s.isZero(), s.isData()));
                off += s.length();
            }
        }
        assertThat(actual).as("block status runs of %s", image).isEqualTo(expected);
        return actual;
    }

    private static void add(List<Run> runs, Run r) {
        if (!runs.isEmpty()) {
            Run last = runs.getLast();
            if (last.start() + last.length() == r.start() && last.depth() == r.depth()
                    && last.present() == r.present() && last.zero() == r.zero() && last.data() == r.data()) {
                runs.set(runs.size() - 1, new Run(last.start(), last.length() + r.length(), last.depth(),
                        last.present(), last.zero(), last.data()));
                return;
            }
        }
        runs.add(r);
    }
}
