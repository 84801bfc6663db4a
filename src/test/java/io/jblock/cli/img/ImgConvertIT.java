package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * convert, map, compare, dd and resize through the launcher and the jar,
 * linked as qemu-img, beside the real qemu-img: the same stdout (progress
 * lines with their carriage returns included), stderr and exit status, and
 * targets that qemu-img itself finds identical to its own.
 */
class ImgConvertIT {
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

    private static void assertSame(Peers.Result theirs, Peers.Result ours) {
        assertThat(ours.out()).isEqualTo(theirs.out());
        assertThat(ours.err()).isEqualTo(theirs.err());
        assertThat(ours.exit()).isEqualTo(theirs.exit());
    }

    @Test
    void theCommandsThroughTheLauncher() throws Exception {
        String ours = linkedQemuImg();
        String theirs = Peers.require("qemu-img");
        String io = Peers.require("qemu-io");
        Path base = dir.resolve("base.qcow2");
        run(theirs, "create", "-q", "-f", "qcow2", base.toString(), "8M").ok();
        run(io, "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -c -P 2 2M 64k", "-c", "write -z 4M 1M",
                base.toString()).ok();
        Path top = dir.resolve("top.qcow2");
        run(theirs, "create", "-q", "-f", "qcow2", "-b", base.toString(), "-F", "qcow2", top.toString()).ok();
        run(io, "-f", "qcow2", "-c", "write -P 3 512k 64k", top.toString()).ok();

        Path q = dir.resolve("q.img");
        Path j = dir.resolve("j.img");
        assertSame(run(theirs, "convert", "-p", top.toString(), q.toString()),
                run(ours, "convert", "-p", top.toString(), j.toString()));
        assertThat(run(theirs, "compare", q.toString(), j.toString()).ok().out()).isEqualTo("Images are identical.\n");
        assertSame(run(theirs, "map", "--output=json", "-f", "raw", q.toString()),
                run(ours, "map", "--output=json", "-f", "raw", q.toString()));
        assertSame(run(theirs, "map", top.toString()), run(ours, "map", top.toString()));
        assertSame(run(theirs, "compare", "-p", "-s", top.toString(), q.toString()),
                run(ours, "compare", "-p", "-s", top.toString(), q.toString()));
        assertSame(run(theirs, "compare", base.toString(), top.toString()),
                run(ours, "compare", base.toString(), top.toString()));

        Path qd = dir.resolve("qd.img");
        Path jd = dir.resolve("jd.img");
        assertSame(run(theirs, "dd", "bs=64k", "count=40", "skip=8", "if=" + top, "of=" + qd),
                run(ours, "dd", "bs=64k", "count=40", "skip=8", "if=" + top, "of=" + jd));
        assertThat(Files.mismatch(qd, jd)).isEqualTo(-1);

        assertSame(run(theirs, "resize", "-f", "raw", q.toString(), "+1M"),
                run(ours, "resize", "-f", "raw", j.toString(), "+1M"));
        assertSame(run(theirs, "resize", "-f", "raw", q.toString(), "-2M"),
                run(ours, "resize", "-f", "raw", j.toString(), "-2M"));
        assertThat(Files.size(j)).isEqualTo(Files.size(q)).isEqualTo(9L << 20);
    }
}
