package io.jblock.format.qcow2;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A dirty image (lazy refcounts, qemu-io killed by SIGKILL after seeded
 * writes) opened by {@code bin/jblock io} and by {@code qemu-io}, on two
 * copies: read-write, both repair it on open with the same lines on stderr,
 * and leave images QEMU finds clean, alike in contents, map and size;
 * read-only, neither repairs anything.
 */
class Qcow2DirtyRepairIT {
    @TempDir
    Path dir;

    @Test
    void aReadWriteOpenRepairsADirtyImageAsQemuIoDoes() throws Exception {
        long seed = Long.getLong("qcow2.seed", new Random().nextLong()); // -Dqcow2.seed=N replays a run
        System.out.println("qcow2 dirty repair: seed " + seed);
        Random r = new Random(seed);
        Path crashed = dir.resolve("crashed.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", crashed.toString(), "32M");
        List<String> writes = new ArrayList<>();
        List<String> reads = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            long off = 65536L * r.nextInt(500);
            long len = 512L * (1 + r.nextInt(300));
            String pattern = Integer.toString(1 + r.nextInt(255));
            writes.add("write -P " + pattern + " " + off + " " + len);
            reads.add("read -P " + pattern + " " + off + " " + len);
        }
        List<String> kill = new ArrayList<>(List.of(Peers.require("qemu-io"), "-f", "qcow2"));
        for (String w : writes) {
            kill.addAll(List.of("-c", w));
        }
        kill.addAll(List.of("-c", "sigraise 9", crashed.toString()));
        Peers.run(120, kill);
        assertThat(qemuImg("info", crashed.toString()).out()).contains("lazy refcounts: true");
        Peers.Result broken = Peers.run(120, List.of(Peers.require("qemu-img"), "check", crashed.toString()));
        assertThat(broken.exit()).as("the crash left refcount errors: %s", broken.out()).isNotZero();

        // Read-only: nothing is repaired, the file is left as it was.
        Path ro = copy(crashed, "ro.qcow2");
        String last = reads.getLast(); // the last write: nothing wrote over it
        Peers.Result jr = Peers.run(120, List.of(Peers.jblock(), "io", "-r", "-f", "qcow2", "-c", last, ro.toString()));
        Peers.Result qr = Peers.run(120, List.of(Peers.require("qemu-io"), "-r", "-f", "qcow2", "-c", last,
                crashed.toString()));
        assertThat(mask(jr.out())).as("read-only output").isEqualTo(mask(qr.out()));
        assertThat(jr.err()).isEqualTo(qr.err()).isEmpty();
        assertThat(Files.mismatch(ro, crashed)).as("a read-only open changes nothing").isEqualTo(-1);

        // Read-write: both repair on open, with the same lines.
        Path mine = copy(crashed, "jblock.qcow2");
        Path theirs = copy(crashed, "qemu.qcow2");
        Peers.Result j = Peers.run(120, List.of(Peers.jblock(), "io", "-f", "qcow2", "-c", last, mine.toString()));
        Peers.Result q = Peers.run(120, List.of(Peers.require("qemu-io"), "-f", "qcow2", "-c", last,
                theirs.toString()));
        assertThat(mask(j.out())).as("output (seed %d)", seed).isEqualTo(mask(q.out()));
        assertThat(j.err()).as("the repair's lines (seed %d)", seed).isEqualTo(q.err());
        assertThat(q.err()).contains("Repairing");
        assertThat(j.exit()).isEqualTo(q.exit()).isZero();
        for (Path p : List.of(mine, theirs)) {
            Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", p.toString()));
            assertThat(check.exit()).as("qemu-img check %s (seed %d): %s", p, seed, check.out()).isZero();
            assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked");
            assertThat(qemuImg("info", p.toString()).out()).doesNotContain("dirty");
        }
        Peers.Result cmp = Peers.run(120, List.of(Peers.require("qemu-img"), "compare", mine.toString(),
                theirs.toString()));
        assertThat(cmp.exit()).as("qemu-img compare (seed %d): %s", seed, cmp.out()).isZero();
        assertThat(qemuImg("map", "--output=json", mine.toString()).out())
                .isEqualTo(qemuImg("map", "--output=json", theirs.toString()).out());
        assertThat(Files.size(mine)).isEqualTo(Files.size(theirs));
    }

    private Path copy(Path from, String name) throws Exception {
        return Files.copy(from, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
    }

    private static String mask(String out) {
        return out.replaceAll("(?m)^(.*, \\d+ ops; ).*$", "$1TIME");
    }
}
