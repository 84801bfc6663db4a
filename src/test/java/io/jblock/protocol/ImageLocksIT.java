package io.jblock.protocol;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Image locks between jblock and QEMU's tools, both ways: whatever holds an
 * image (qemu-io, qemu-nbd, jblock io, jblock nbd), jblock's tools are
 * refused exactly when QEMU's are, with QEMU's message and exit status, and
 * QEMU's tools are refused by jblock's holders as by QEMU's own.
 */
class ImageLocksIT {
    @TempDir
    Path dir;

    private static final String QEMU_IMG = Peers.require("qemu-img");
    private static final String QEMU_IO = Peers.require("qemu-io");
    private static final String QEMU_NBD = Peers.require("qemu-nbd");

    // ---------------------------------------------------------------- helpers

    private Path image(String name, String fmt) throws Exception {
        Path p = dir.resolve(name);
        Peers.run(QEMU_IMG, "create", "-q", "-f", fmt, p.toString(), "1M").ok();
        return p;
    }

    private static Peers.Result run(String... cmd) throws Exception {
        return Peers.run(120, List.of(cmd));
    }

    private static Peers.Result jblock(String tool, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Peers.jblock(), tool));
        cmd.addAll(List.of(args));
        return Peers.run(120, cmd);
    }

    /** The same exit status and stderr, once the program names are the same. */
    private static void assertSameAs(Peers.Result qemu, Peers.Result ours, String qemuTool) {
        String jblockName = "jblock " + qemuTool.substring("qemu-".length()) + ":";
        assertThat(ours.err().replace(jblockName, qemuTool + ":")).isEqualTo(qemu.err());
        assertThat(ours.exit()).as("exit status; stderr %s", ours.err()).isEqualTo(qemu.exit());
    }

    /** A process that holds the image open (qemu-io or jblock io reading commands from a pipe) until closed. */
    private static final class Holder implements AutoCloseable {
        private final Process process;

        Holder(Path image, List<String> cmd) throws Exception {
            process = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (!hasLocks(image)) {
                assertThat(process.isAlive()).as("holder running: %s", cmd).isTrue();
                assertThat(System.nanoTime()).as("holder took its locks: %s", cmd).isLessThan(deadline);
                Thread.sleep(50);
            }
        }

        /** Sends commands to the tool's standard input. */
        void send(String commands) throws IOException {
            process.getOutputStream().write(commands.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            process.getOutputStream().flush();
        }

        @Override
        public void close() throws Exception {
            process.getOutputStream().close(); // end of input: the tool quits
            if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    /** Whether some open file description lock on the image covers {@code offset} (from /proc/locks). */
    private static boolean byteLocked(Path image, long offset) throws IOException {
        long inode = (Long) Files.getAttribute(image, "unix:ino");
        for (String line : Files.readAllLines(Path.of("/proc/locks"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 7 && f[1].equals("OFDLCK") && f[5].endsWith(":" + inode)
                    && Long.parseLong(f[6]) <= offset && offset <= Long.parseLong(f[7])) {
                return true;
            }
        }
        return false;
    }

    /** Waits until byte {@code offset} of the image is locked, or not, as {@code locked} says. */
    private static void awaitLock(Path image, long offset, boolean locked) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (byteLocked(image, offset) != locked) {
            assertThat(System.nanoTime()).as("byte %d locked: %s", offset, locked).isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /** Whether /proc/locks lists an open file description lock on the image's inode. */
    private static boolean hasLocks(Path image) throws IOException {
        long inode = (Long) Files.getAttribute(image, "unix:ino");
        for (String line : Files.readAllLines(Path.of("/proc/locks"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 5 && f[1].equals("OFDLCK") && f[5].endsWith(":" + inode)) {
                return true;
            }
        }
        return false;
    }

    private Peers.Server nbd(String tool, Path image, String... args) throws Exception {
        Path sock = dir.resolve(tool.replace('/', '_') + "-" + System.nanoTime() + ".sock");
        List<String> cmd = new ArrayList<>(tool.equals("jblock") ? List.of(Peers.jblock(), "nbd") : List.of(tool));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("-k", sock.toString(), image.toString()));
        return Peers.Server.start(cmd, sock, 0);
    }

    // ---------------------------------------------------------------- jblock refused by QEMU's holders

    @Test
    void aQcow2ImageQemuIoWritesIsRefusedToJblockReadersUnlessForceShared() throws Exception {
        Path img = image("held.qcow2", "qcow2");
        String p = img.toString();
        try (Holder ignored = new Holder(img, List.of(QEMU_IO, "-f", "qcow2", p))) {
            Peers.Result qemuInfo = run(QEMU_IMG, "info", "-f", "qcow2", p);
            assertThat(qemuInfo.err()).contains("Failed to get shared \"write\" lock");
            assertSameAs(qemuInfo, jblock("img", "info", "-f", "qcow2", p), "qemu-img");
            assertSameAs(run(QEMU_IMG, "map", "-f", "qcow2", p), jblock("img", "map", "-f", "qcow2", p), "qemu-img");
            assertSameAs(run(QEMU_IO, "-r", "-f", "qcow2", "-c", "read 0 512", p),
                    jblock("io", "-r", "-f", "qcow2", "-c", "read 0 512", p), "qemu-io");

            Peers.Result forced = jblock("img", "info", "-U", "-f", "qcow2", p);
            assertThat(forced.exit()).as(forced.err()).isZero();
            assertThat(forced.out()).contains("file format: qcow2");
            Peers.Result forcedRead = jblock("io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0 0 512", p);
            assertThat(forcedRead.exit()).as(forcedRead.err()).isZero();
            assertThat(forcedRead.out()).contains("read 512/512 bytes at offset 0");
        }
        // Released when the holder quits.
        assertThat(jblock("img", "info", "-f", "qcow2", p).exit()).isZero();
    }

    @Test
    void aRawImageQemuNbdServesCannotBeResizedOrCopiedFromButTakesQemuIoWriters() throws Exception {
        Path img = image("served.raw", "raw");
        String p = img.toString();
        String out = image("out.raw", "raw").toString();
        try (Peers.Server ignored = nbd(QEMU_NBD, img, "-f", "raw")) {
            Peers.Result qemuResize = run(QEMU_IMG, "resize", "-f", "raw", p, "2M");
            assertThat(qemuResize.err()).contains("Failed to get \"resize\" lock");
            assertSameAs(qemuResize, jblock("img", "resize", "-f", "raw", p, "2M"), "qemu-img");
            Peers.Result qemuConvert = run(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", p, out);
            assertThat(qemuConvert.err()).contains("Failed to get shared \"write\" lock");
            assertSameAs(qemuConvert, jblock("img", "convert", "-f", "raw", "-O", "raw", p, out), "qemu-img");
            // qemu-io shares everything: it may write beside qemu-nbd, and so may jblock io.
            Peers.Result ours = jblock("io", "-f", "raw", "-c", "write -P 3 0 512", p);
            assertThat(ours.exit()).as(ours.err()).isZero();
            assertThat(run(QEMU_IO, "-f", "raw", "-c", "write -P 3 0 512", p).exit()).isZero();
            // A convert target written with O_DIRECT takes resize (its padded end may be cut back): refused.
            Peers.Result qemuDirect = run(QEMU_IMG, "convert", "-n", "-t", "none", "-f", "raw", "-O", "raw", out, p);
            assertThat(qemuDirect.err()).contains("Failed to get \"resize\" lock");
            assertSameAs(qemuDirect, jblock("img", "convert", "-n", "-t", "none", "-f", "raw", "-O", "raw", out, p),
                    "qemu-img");
            Peers.Result cached = jblock("img", "convert", "-n", "-f", "raw", "-O", "raw", out, p);
            assertThat(cached.exit()).as(cached.err()).isZero();
            // -U on a convert source shares write: the copy is allowed.
            Peers.Result forced = jblock("img", "convert", "-U", "-f", "raw", "-O", "raw", p, out);
            assertThat(forced.exit()).as(forced.err()).isZero();
        }
    }

    // ---------------------------------------------------------------- QEMU refused by jblock's holders

    @Test
    void jblockNbdRefusesQemuToolsAsQemuNbdDoes() throws Exception {
        Path raw = image("export.raw", "raw");
        Path qcow2 = image("export.qcow2", "qcow2");
        List<List<String>> rawProbes = List.of(
                List.of(QEMU_IMG, "resize", "-f", "raw", raw.toString(), "2M"),
                List.of(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", raw.toString(), dir.resolve("o1").toString()),
                List.of(QEMU_IMG, "info", "-f", "raw", raw.toString()),
                List.of(QEMU_IO, "-f", "raw", "-c", "write 0 512", raw.toString()));
        List<List<String>> qcow2Probes = List.of(
                List.of(QEMU_IO, "-f", "qcow2", "-c", "write 0 512", qcow2.toString()),
                List.of(QEMU_IMG, "info", "-f", "qcow2", qcow2.toString()),
                List.of(QEMU_IMG, "resize", "-f", "qcow2", qcow2.toString(), "2M"),
                List.of(QEMU_IMG, "info", "-U", "-f", "qcow2", qcow2.toString()));
        assertProbesSame(raw, List.of("-f", "raw"), rawProbes);
        // jblock serves qcow2 read-only for now.
        assertProbesSame(qcow2, List.of("-r", "-f", "qcow2"), qcow2Probes);
    }

    private void assertProbesSame(Path img, List<String> args, List<List<String>> probes) throws Exception {
        List<Peers.Result> withQemu = new ArrayList<>();
        try (Peers.Server ignored = nbd(QEMU_NBD, img, args.toArray(String[]::new))) {
            for (List<String> probe : probes) {
                withQemu.add(Peers.run(120, probe));
            }
        }
        int refused = 0;
        try (Peers.Server ignored = nbd("jblock", img, args.toArray(String[]::new))) {
            for (int i = 0; i < probes.size(); i++) {
                Peers.Result ours = Peers.run(120, probes.get(i));
                assertThat(ours.err()).as("%s", probes.get(i)).isEqualTo(withQemu.get(i).err());
                assertThat(ours.exit()).as("%s", probes.get(i)).isEqualTo(withQemu.get(i).exit());
                refused += ours.err().contains("Is another process using the image") ? 1 : 0;
            }
        }
        assertThat(refused).as("some probe was refused").isPositive();
    }

    @Test
    void nbdServersTakeForceShareFromImageOptionsAsQemuNbdDoes() throws Exception {
        Path img = image("shared.qcow2", "qcow2");
        String p = img.toString();
        try (Holder ignored = new Holder(img, List.of(QEMU_IO, "-f", "qcow2", p))) {
            Peers.Result qemu = run(QEMU_NBD, "-r", "-k", dir.resolve("q.sock").toString(), "-f", "qcow2", p);
            assertThat(qemu.err()).contains("Failed to get shared \"write\" lock");
            assertSameAs(qemu, jblock("nbd", "-r", "-k", dir.resolve("j.sock").toString(), "-f", "qcow2", p),
                    "qemu-nbd");
            String opts = "driver=qcow2,file.filename=" + p + ",force-share=on";
            // qemu-nbd 7.2 has no -U: force-share=on comes in the image options.
            Path sock = dir.resolve("forced.sock");
            try (Peers.Server server = Peers.Server.start(List.of(Peers.jblock(), "nbd", "-r", "--image-opts",
                    "-k", sock.toString(), opts), sock, 0)) {
                assertThat(server.process().isAlive()).isTrue();
            }
        }
    }

    @Test
    void twoJblockProcessesExcludeEachOther() throws Exception {
        Path img = image("two.qcow2", "qcow2");
        String p = img.toString();
        try (Holder ignored = new Holder(img, List.of(Peers.jblock(), "io", "-r", "-f", "qcow2", p))) {
            // A read-only qcow2 user lets nobody write the file under it.
            Peers.Result qemu = run(QEMU_IO, "-f", "raw", "-c", "write 0 512", p);
            assertThat(qemu.err()).contains("Failed to get \"write\" lock");
            assertSameAs(qemu, jblock("io", "-f", "raw", "-c", "write 0 512", p), "qemu-io");
            Peers.Result resize = jblock("img", "resize", "-f", "raw", p, "2M");
            assertThat(resize.err()).contains("Failed to get \"write\" lock").contains("[" + p + "]");
            assertThat(resize.exit()).isEqualTo(1);
        }
    }

    @Test
    void convertingAnImageOntoItselfFailsAsQemuDoes() throws Exception {
        Path img = image("self.raw", "raw");
        Peers.run(QEMU_IO, "-f", "raw", "-c", "write -P 5 0 64k", img.toString()).ok();
        byte[] before = Files.readAllBytes(img);
        String p = img.toString();
        assertSameAs(run(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", p, p),
                jblock("img", "convert", "-f", "raw", "-O", "raw", p, p), "qemu-img");
        assertThat(Files.readAllBytes(img)).isEqualTo(before);
    }

    @Test
    void locksAreMovedOnReopenAndDroppedOnClose() throws Exception {
        Path img = image("reopen.raw", "raw");
        String p = img.toString();
        // Read-only, then read-write: qemu-img resize is refused only by nobody; convert's source by the writer.
        Peers.Result ours = jblock("io", "-r", "-f", "raw", "-c", "reopen -w", "-c", "write -P 1 0 512",
                "-c", "reopen -r", "-c", "read -P 1 0 512", p);
        assertThat(ours.exit()).as(ours.err()).isZero();
        assertThat(ours.err()).isEmpty();
        assertThat(ours.out()).contains("wrote 512/512").contains("read 512/512");
        assertThat(hasLocks(img)).isFalse();
    }

    @Test
    void reopenSwitchesTheLocksOfARunningJblockIo() throws Exception {
        Path img = image("switch.raw", "raw");
        String p = img.toString();
        String out = image("switch-out.raw", "raw").toString();
        try (Holder holder = new Holder(img, List.of(Peers.jblock(), "io", "-r", "-f", "raw", p))) {
            assertThat(byteLocked(img, 100)).isTrue();
            assertThat(byteLocked(img, 101)).isFalse();
            assertThat(run(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", p, out).exit()).isZero();

            holder.send("reopen -w\n");
            awaitLock(img, 101, true);
            Peers.Result refused = run(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", p, out);
            assertThat(refused.err()).contains("Failed to get shared \"write\" lock");
            assertThat(refused.exit()).isEqualTo(1);

            holder.send("reopen -r\n");
            awaitLock(img, 101, false);
            assertThat(run(QEMU_IMG, "convert", "-f", "raw", "-O", "raw", p, out).exit()).isZero();
        }
        assertThat(hasLocks(img)).isFalse();
    }

    @Test
    void lockingOffTakesNoLocksAndForceShareNeedsReadOnly() throws Exception {
        Path img = image("off.raw", "raw");
        String p = img.toString();
        Peers.Result qemu = run(QEMU_IO, "-U", "-f", "raw", "-c", "read 0 512", p);
        assertThat(qemu.err()).contains("force-share=on can only be used with read-only images");
        assertSameAs(qemu, jblock("io", "-U", "-f", "raw", "-c", "read 0 512", p), "qemu-io");
        try (Peers.Server ignored = nbd(QEMU_NBD, img, "-f", "raw")) {
            Peers.Result resize = jblock("img", "resize", "--image-opts",
                    "driver=raw,file.driver=file,file.locking=off,file.filename=" + p, "2M");
            assertThat(resize.exit()).as(resize.err()).isZero();
        }
        assertThat(Files.size(img)).isEqualTo(2 << 20);
    }
}
