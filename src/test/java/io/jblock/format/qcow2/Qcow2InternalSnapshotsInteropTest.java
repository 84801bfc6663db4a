package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.assertSameBytes;
import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Internal snapshots taken, applied and deleted by jblock and by qemu-img in
 * a seeded random mix, with writes by both between them (so shared data
 * clusters and shared L2 tables are copied on write). A raw shadow of the
 * active layer is kept, and one of every snapshot as it was taken. After
 * every step qemu-img check must find the image clean (no leaks, no
 * corruption); at the end, and now and then on the way, QEMU's reading of
 * the active layer and of every snapshot ({@code qemu-img convert -l}) must
 * equal its shadow, and {@code qemu-img snapshot -l} must list exactly the
 * snapshots the shadow has.
 */
class Qcow2InternalSnapshotsInteropTest {
    private static final int SIZE = 8 << 20;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"compat=0.10,cluster_size=4k", "cluster_size=4k", "refcount_bits=64,cluster_size=4k",
            "extended_l2=on,cluster_size=16k", "cluster_size=64k,refcount_bits=8"})
    void randomMixOfJblockAndQemu(String options) throws Exception {
        long seed = System.nanoTime() ^ options.hashCode();
        System.out.println("internal snapshots (" + options + "): seed " + seed);
        Random r = new Random(seed);
        Path img = dir.resolve("s.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), Integer.toString(SIZE));
        int cluster = clusterSize(options);
        byte[] active = new byte[SIZE];
        // Compressed clusters first (compressed writes go to unallocated clusters only).
        List<String> compressed = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int off = cluster * r.nextInt(SIZE / cluster);
            int pattern = 1 + r.nextInt(255);
            compressed.add("write -c -P " + pattern + " " + off + " " + cluster);
        }
        for (String c : compressed) {
            String[] w = c.split(" ");
            int off = Integer.parseInt(w[4]);
            if (allZero(active, off, cluster)) {
                qemuIo(img, List.of(c));
                Arrays.fill(active, off, off + cluster, (byte) Integer.parseInt(w[3]));
            }
        }
        Map<String, byte[]> snapshots = new LinkedHashMap<>();
        for (int step = 0; step < 30; step++) {
            int op = r.nextInt(10);
            boolean byJblock = r.nextBoolean();
            String what;
            if (op < 4 || snapshots.isEmpty() && op > 5) {
                what = write(img, active, r, byJblock, cluster);
            } else if (op < 6) {
                String name = "s" + step;
                if (byJblock) {
                    try (Drive d = openRw(img)) {
                        snapshotsOf(d).create(name, 1_700_000_000L + step, 0);
                    }
                } else {
                    qemuImg("snapshot", "-c", name, img.toString());
                }
                snapshots.put(name, active.clone());
                what = "create " + name;
            } else {
                List<String> names = new ArrayList<>(snapshots.keySet());
                String name = names.get(r.nextInt(names.size()));
                if (op < 8) {
                    if (byJblock) {
                        try (Drive d = openRw(img)) {
                            Qcow2InternalSnapshots.Info s = snapshotsOf(d).findByName(name).orElseThrow();
                            snapshotsOf(d).delete(s.id(), s.name());
                        }
                    } else {
                        qemuImg("snapshot", "-d", name, img.toString());
                    }
                    snapshots.remove(name);
                    what = "delete " + name;
                } else {
                    if (byJblock) {
                        try (Drive d = openRw(img)) {
                            snapshotsOf(d).apply(name);
                        }
                    } else {
                        qemuImg("snapshot", "-a", name, img.toString());
                    }
                    active = snapshots.get(name).clone();
                    what = "apply " + name;
                }
            }
            String label = "step " + step + " (" + what + (byJblock ? " by jblock" : " by qemu") + "), seed " + seed;
            assertClean(img, label);
            if (step % 7 == 6) {
                assertSameBytes(QemuImages.qemuRaw(img), active, "active layer after " + label);
            }
        }
        assertSameBytes(QemuImages.qemuRaw(img), active, "active layer at the end, seed " + seed);
        for (Map.Entry<String, byte[]> e : snapshots.entrySet()) {
            Path raw = dir.resolve("snap.raw");
            qemuImg("convert", "-l", "snapshot.name=" + e.getKey(), "-O", "raw", img.toString(), raw.toString());
            assertSameBytes(Files.readAllBytes(raw), e.getValue(), "snapshot " + e.getKey() + ", seed " + seed);
        }
        String list = qemuImg("snapshot", "-l", img.toString()).out();
        List<String> listed = new ArrayList<>();
        for (String line : list.split("\n")) {
            String[] cols = line.trim().split("\\s+");
            if (cols.length > 1 && cols[1].matches("s\\d+")) {
                listed.add(cols[1]);
            }
        }
        assertThat(listed).as("qemu-img snapshot -l, seed %d", seed).containsExactlyInAnyOrderElementsOf(
                snapshots.keySet());
        // Every snapshot deleted by jblock: nothing may stay behind.
        try (Drive d = openRw(img)) {
            for (Qcow2InternalSnapshots.Info s : snapshotsOf(d).list()) {
                snapshotsOf(d).delete(s.id(), s.name());
            }
        }
        assertClean(img, "all snapshots deleted, seed " + seed);
        assertSameBytes(QemuImages.qemuRaw(img), active, "active layer after deleting all, seed " + seed);
    }

    /**
     * Applying a snapshot taken at another size gives the image that size
     * again (growing and shrinking), as qemu-img does; a v2 image with a
     * snapshot taken in the same session refuses a resize, as QEMU does.
     */
    @org.junit.jupiter.api.Test
    void applyRestoresTheSnapshotsSizeAndV2RefusesResizeWithSnapshots() throws Exception {
        Path img = dir.resolve("r.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        qemuIo(img, List.of("write -P 1 0 4M"));
        byte[] at4 = QemuImages.qemuRaw(img);
        try (Drive d = openRw(img)) {
            snapshotsOf(d).create("small", 1, 0);
            d.truncate(16 << 20, false, io.jblock.block.Prealloc.OFF);
            d.write(10 << 20, ByteBuffer.wrap(new byte[4096]).put(0, (byte) 7), 0);
            snapshotsOf(d).create("big", 2, 0);
            snapshotsOf(d).apply("small");
            assertThat(d.length()).isEqualTo(4 << 20);
        }
        assertClean(img, "apply to a smaller snapshot");
        assertSameBytes(QemuImages.qemuRaw(img), at4, "after applying the 4 MiB snapshot");
        try (Drive d = openRw(img)) {
            snapshotsOf(d).apply("2");
            assertThat(d.length()).isEqualTo(16 << 20);
        }
        assertClean(img, "apply to a bigger snapshot");
        byte[] big = QemuImages.qemuRaw(img);
        assertThat(big.length).isEqualTo(16 << 20);
        assertThat(big[10 << 20]).isEqualTo((byte) 7);
        Path v2 = dir.resolve("v2.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2.toString(), "4M");
        try (Drive d = openRw(v2)) {
            snapshotsOf(d).create("s", 1, 0);
            org.assertj.core.api.Assertions.assertThatThrownBy(
                    () -> d.truncate(8 << 20, false, io.jblock.block.Prealloc.OFF))
                    .hasMessageContaining("Can't resize a v2 image which has snapshots");
        }
        assertClean(v2, "v2 resize refused");
    }

    private static String write(Path img, byte[] active, Random r, boolean byJblock, int cluster) throws Exception {
        int n = 1 + r.nextInt(5);
        List<String> cmds = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 512 * (1 + r.nextInt(3 * cluster / 512));
            int off = 512 * r.nextInt((SIZE - len) / 512 + 1);
            int pattern = r.nextInt(6) == 0 ? 0 : 1 + r.nextInt(255);
            cmds.add((pattern == 0 ? "write -z " : "write -P " + pattern + " ") + off + " " + len);
            Arrays.fill(active, off, off + len, (byte) pattern);
        }
        if (byJblock) {
            try (Drive d = openRw(img)) {
                for (String c : cmds) {
                    String[] w = c.split(" ");
                    long off = Long.parseLong(w[w.length - 2]);
                    int len = Integer.parseInt(w[w.length - 1]);
                    if (w[1].equals("-z")) {
                        d.writeZeroes(off, len, 0);
                    } else {
                        byte[] b = new byte[len];
                        Arrays.fill(b, (byte) Integer.parseInt(w[2]));
                        d.write(off, ByteBuffer.wrap(b), 0);
                    }
                }
                d.flush();
            }
        } else {
            qemuIo(img, cmds);
        }
        return "writes " + cmds;
    }

    private static boolean allZero(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    private static int clusterSize(String options) {
        for (String o : options.split(",")) {
            if (o.startsWith("cluster_size=")) {
                return Integer.parseInt(o.substring(13, o.length() - 1)) * 1024;
            }
        }
        return 64 * 1024;
    }

    static Drive openRw(Path img) throws Exception {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"));
    }

    static Qcow2InternalSnapshots snapshotsOf(Drive d) {
        return ((Qcow2Node) d.root()).internalSnapshots();
    }

    static void assertClean(Path img, String label) throws Exception {
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check exit after %s:\n%s%s", label, check.out(), check.err())
                .isZero();
        assertThat(check.out()).as("qemu-img check after %s", label).contains("No errors were found");
    }
}
