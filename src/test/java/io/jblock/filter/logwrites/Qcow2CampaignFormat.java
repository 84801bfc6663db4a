package io.jblock.filter.logwrites;

import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The power-cut campaign's qcow2 workloads. The image under test is created by
 * qemu-img; a rebuilt image is checked by {@code qemu-img check} (no corruption;
 * leaks allowed: exit 0 or 3) and read back through jblock's qcow2 read side.
 *
 * <ul>
 *   <li>{@code FRESH}: an empty image: every write allocates.</li>
 *   <li>{@code OVER_RAW}, {@code OVER_QCOW2}: an empty overlay over a backing
 *       file full of {@link #BASE_ID}'s pattern: writes copy the rest of their
 *       cluster from it.</li>
 *   <li>{@code SNAPSHOT}: an image full of the base pattern with an internal
 *       snapshot taken by {@code qemu-img snapshot -c}: every cluster is shared,
 *       so every write copies its cluster.</li>
 * </ul>
 * Every workload writes, zero-writes and discards; those without a fully
 * allocated image also make compressed writes.
 */
final class Qcow2CampaignFormat implements PowerCutCampaign.Format {
    /** The request id the base pattern claims: no workload runs this many requests. */
    static final int BASE_ID = 0x7fff_0000;
    static final int CLUSTER = 16 * 1024;

    enum Shape { FRESH, OVER_RAW, OVER_QCOW2, SNAPSHOT }

    private final Shape shape;
    /** Clusters of rebuilt images that could not be read (counted, reported by the test). */
    int unreadable;

    Qcow2CampaignFormat(Shape shape) {
        this.shape = shape;
    }

    @Override
    public String name() {
        return "qcow2-" + shape.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    @Override
    public String driver() {
        return "qcow2";
    }

    @Override
    public List<String> extraOptions(Path folder) {
        if (shape != Shape.OVER_RAW && shape != Shape.OVER_QCOW2) {
            return List.of();
        }
        String fmt = shape == Shape.OVER_RAW ? "raw" : "qcow2";
        return List.of("backing.driver", fmt, "backing.file.driver", "file",
                "backing.file.filename", folder.resolve("backing." + fmt).toString());
    }

    @Override
    public long initialId() {
        return shape == Shape.FRESH ? 0 : BASE_ID;
    }

    @Override
    public boolean compressedWrites() {
        return shape != Shape.SNAPSHOT;
    }

    @Override
    public int clusterSize() {
        return CLUSTER;
    }

    @Override
    public void create(Path image, long size) throws IOException {
        Path folder = image.getParent();
        String opts = "cluster_size=" + CLUSTER;
        try {
            switch (shape) {
                case FRESH -> qemuImg("create", "-q", "-f", "qcow2", "-o", opts, image.toString(), Long.toString(size));
                case OVER_RAW, OVER_QCOW2 -> {
                    String fmt = shape == Shape.OVER_RAW ? "raw" : "qcow2";
                    Path backing = folder.resolve("backing." + fmt);
                    Path raw = folder.resolve("backing.pattern");
                    writeBasePattern(raw, size);
                    if (fmt.equals("raw")) {
                        Files.move(raw, backing, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                    } else {
                        qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536",
                                raw.toString(), backing.toString());
                        Files.delete(raw);
                    }
                    // Named relative to the overlay's folder, where the rebuilt images are read too.
                    qemuImg("create", "-q", "-f", "qcow2", "-o", opts, "-b", backing.getFileName().toString(),
                            "-F", fmt, image.toString(), Long.toString(size));
                }
                case SNAPSHOT -> {
                    Path raw = folder.resolve("snapshot.pattern");
                    writeBasePattern(raw, size);
                    qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw.toString(), image.toString());
                    Files.delete(raw);
                    qemuImg("snapshot", "-c", "before-workload", image.toString());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    private static void writeBasePattern(Path raw, long size) throws IOException {
        byte[] all = new byte[Math.toIntExact(size)];
        for (int off = 0; off < size; off += 65536) {
            int n = (int) Math.min(65536, size - off);
            PowerCutCampaign.pattern(BASE_ID, off, n).get(all, off, n);
        }
        Files.write(raw, all);
    }

    @Override
    public byte[] readDisk(byte[] file, Path scratch, long size) throws IOException {
        Path image = scratch.resolve("rebuilt.qcow2");
        Files.write(image, file);
        byte[] disk = new byte[Math.toIntExact(size)];
        try (Drive d = DriveOpener.standard().open(
                DriveConfig.parseDrive("file=" + image + ",format=qcow2,read-only=on"))) {
            for (int off = 0; off < size; off += CLUSTER) {
                ByteBuffer b = ByteBuffer.wrap(disk, off, CLUSTER).slice();
                try {
                    d.read(off, b);
                } catch (io.jblock.block.BlockException e) {
                    // A cluster whose data never reached the disk (say compressed data dropped while its L2
                    // entry was kept; QEMU orders them no better) reads as torn: the campaign counts a lost
                    // write if one was promised there.
                    java.util.Arrays.fill(disk, off, off + CLUSTER, (byte) 0xa5);
                    unreadable++;
                }
            }
        } catch (io.jblock.block.BlockException e) {
            throw new IOException("opening the rebuilt image: " + e.getMessage(), e);
        }
        return disk;
    }

    @Override
    public String check(byte[] file, Path scratch) throws IOException {
        Path image = scratch.resolve("rebuilt.qcow2");
        Files.write(image, file);
        try {
            Peers.Result r = Peers.run(120, List.of(Peers.require("qemu-img"), "check", "-f", "qcow2",
                    image.toString()));
            // 0: clean; 3: leaks only (clusters allocated after the last flush that reached the disk).
            return r.exit() == 0 || r.exit() == 3 ? "" : "qemu-img check exit " + r.exit() + ": " + r.out() + r.err();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    private static void qemuImg(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Peers.require("qemu-img"));
        cmd.addAll(List.of(args));
        Peers.run(120, cmd).ok();
    }
}
