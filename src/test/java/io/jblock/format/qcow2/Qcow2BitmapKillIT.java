package io.jblock.format.qcow2;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A process killed (SIGKILL) while it has an image with persistent bitmaps
 * open read-write: {@code bin/jblock io} and {@code qemu-io}, each on its own
 * copy, write and then raise SIGKILL. Both leave every bitmap marked in use
 * (the mark reached the disk before the first write) and an image that
 * {@code qemu-img check} finds clean; {@code jblock img bitmap --remove}
 * then removes the inconsistent bitmaps as qemu-img's does.
 */
class Qcow2BitmapKillIT {
    @TempDir
    Path dir;

    @Test
    void aKilledWriterLeavesItsBitmapsInUseAsQemuDoes() throws Exception {
        Path template = dir.resolve("t.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", template.toString(), "16M");
        qemuImg("bitmap", "--add", template.toString(), "a");
        qemuImg("bitmap", "--add", "-g", "4k", "--disable", template.toString(), "d");
        Path mine = dir.resolve("jblock.qcow2");
        Path theirs = dir.resolve("qemu.qcow2");
        Files.copy(template, mine);
        Files.copy(template, theirs);
        // jblock io's "sigraise 9" ends the run cleanly (it closes the image), so both writers are killed from
        // outside: once their writes can be read back through the page cache, SIGKILL.
        List<String> script = List.of("-c", "write -P 7 1M 300k", "-c", "write -z 5M 64k", "-c", "sleep 600000");
        List<String> j = new ArrayList<>(List.of(Peers.jblock(), "io", "-f", "qcow2"));
        j.addAll(script);
        j.add(mine.toString());
        List<String> q = new ArrayList<>(List.of(Peers.require("qemu-io"), "-f", "qcow2"));
        q.addAll(script);
        q.add(theirs.toString());
        killAfterWrites(j, mine);
        killAfterWrites(q, theirs);

        String info = qemuImg("info", "--output=json", mine.toString()).out();
        assertThat(info.replace(mine.toString(), "X"))
                .isEqualTo(qemuImg("info", "--output=json", theirs.toString()).out().replace(theirs.toString(), "X")
                        .replaceAll("\"actual-size\": \\d+", "\"actual-size\": " + actualSize(info)));
        assertThat(info).contains("\"in-use\"");
        for (Path p : List.of(mine, theirs)) {
            Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", p.toString()));
            assertThat(check.exit()).as("qemu-img check %s: %s", p, check.out()).isZero();
            assertThat(check.out()).startsWith("No errors were found on the image.");
        }
        Peers.Result cmp = Peers.run(120, List.of(Peers.require("qemu-img"), "compare", mine.toString(),
                theirs.toString()));
        assertThat(cmp.exit()).as("the written data survived: %s", cmp.out()).isZero();

        // The inconsistent bitmaps refuse everything but removal.
        Peers.Result clear = Peers.run(120, List.of(Peers.jblock(), "img", "bitmap", "--clear", mine.toString(), "a"));
        assertThat(clear.exit()).isEqualTo(1);
        assertThat(clear.err()).isEqualTo("jblock img: Operation clear on bitmap a failed: Bitmap 'a' is inconsistent"
                + " and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk\n");
        for (String name : List.of("a", "d")) {
            Peers.Result rm = Peers.run(120, List.of(Peers.jblock(), "img", "bitmap", "--remove", mine.toString(),
                    name));
            assertThat(rm.exit()).as("remove %s: %s", name, rm.err()).isZero();
        }
        assertThat(qemuImg("info", mine.toString()).out()).doesNotContain("bitmaps");
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", mine.toString()));
        assertThat(check.exit()).as("after removal: %s", check.out()).isZero();
        assertThat(check.out()).doesNotContain("leaked");
    }

    private static void killAfterWrites(List<String> cmd, Path image) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(120);
            while (true) {
                assertThat(p.isAlive()).as("%s still running", cmd).isTrue();
                assertThat(System.nanoTime()).as("%s wrote in time", cmd).isLessThan(deadline);
                Peers.Result read = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-U", "-f", "qcow2",
                        "-c", "read -P 7 1M 300k", "-c", "read -P 0 5M 64k", image.toString()));
                if (read.exit() == 0 && !read.out().contains("Pattern verification failed")) {
                    break;
                }
                Thread.sleep(100);
            }
        } finally {
            p.destroyForcibly(); // SIGKILL
            p.waitFor();
        }
    }

    private static String actualSize(String json) {
        var m = java.util.regex.Pattern.compile("\"actual-size\": (\\d+)").matcher(json);
        return m.find() ? m.group(1) : "?";
    }
}
