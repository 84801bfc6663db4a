package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code jblock img check} through the launcher and the jar, linked as
 * qemu-img so messages name the same program: a leaky and corrupt image is
 * reported, repaired and double-checked as qemu-img does it, and scripts can
 * rely on the exit statuses 0, 2, 3 and 63.
 */
class ImgCheckIT {
    @TempDir
    Path dir;

    private String linkedQemuImg() throws Exception {
        Path link = dir.resolve("bin/qemu-img");
        Files.createDirectories(link.getParent());
        Files.createSymbolicLink(link, Path.of(Peers.jblock()));
        return link.toString();
    }

    private static Peers.Result run(String tool, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(tool));
        cmd.addAll(List.of(args));
        return Peers.run(120, cmd);
    }

    @Test
    void exitStatusesAndRepairsAsQemuImg() throws Exception {
        String ours = linkedQemuImg();
        String theirs = Peers.require("qemu-img");
        Path img = dir.resolve("a.qcow2");
        run(theirs, "create", "-q", "-f", "qcow2", img.toString(), "8M").ok();
        run(Peers.require("qemu-io"), "-c", "write -P 1 0 128k", img.toString()).ok();
        Path raw = dir.resolve("r.img");
        run(theirs, "create", "-q", "-f", "raw", raw.toString(), "1M").ok();

        assertSame(run(theirs, "check", img.toString()), run(ours, "check", img.toString()), 0);
        assertSame(run(theirs, "check", raw.toString()), run(ours, "check", raw.toString()), 63);

        // Cluster 0 (the header) stored with refcount 2: a leak; the L1 entry's COPIED cleared: a corruption.
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(48);
            long reftable = f.readLong();
            f.seek(reftable);
            long block = f.readLong();
            f.seek(block);
            f.writeShort(2);
        }
        assertSame(run(theirs, "check", img.toString()), run(ours, "check", img.toString()), 3);
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            long e = f.readLong();
            f.seek(l1);
            f.writeLong(e & Long.MAX_VALUE);
        }
        assertSame(run(theirs, "check", "--output=json", img.toString()),
                run(ours, "check", "--output=json", img.toString()), 2);

        Path copy = dir.resolve("b.qcow2");
        Files.copy(img, copy);
        Peers.Result q = run(theirs, "check", "-r", "all", copy.toString());
        Files.copy(img, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Peers.Result j = run(ours, "check", "-r", "all", copy.toString());
        assertSame(q, j, 0);
        assertThat(j.out()).contains("Double checking the fixed image now...");
        assertSame(run(theirs, "check", copy.toString()), run(ours, "check", copy.toString()), 0);
    }

    private static void assertSame(Peers.Result expected, Peers.Result actual, int status) {
        assertThat(actual.exit()).as("status; stderr %s", actual.err()).isEqualTo(expected.exit()).isEqualTo(status);
        assertThat(actual.out()).isEqualTo(expected.out());
        assertThat(actual.err()).isEqualTo(expected.err());
    }
}
