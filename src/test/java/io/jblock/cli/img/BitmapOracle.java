package io.jblock.cli.img;

import io.jblock.cli.Main;
import io.jblock.testing.Peers;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the bitmap tests ask of the real tools: qemu-img and qemu-io runs,
 * jblock's io tool in this JVM, and a bitmap's dirty map as QEMU itself
 * reads it from an image (qemu-nbd exporting it with {@code -B NAME},
 * nbdinfo listing the {@code qemu:dirty-bitmap:NAME} context).
 */
final class BitmapOracle {
    private BitmapOracle() {
    }

    static void qemuImg(String... a) {
        QemuImgOracle.Run r = QemuImgOracle.qemu(List.of(a));
        assertThat(r.status()).as("qemu-img %s: %s", List.of(a), r).isZero();
    }

    static void qemuIo(Path image, List<String> commands) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Peers.require("qemu-io")));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        Peers.Result r = Peers.run(120, cmd);
        assertThat(r.exit()).as("%s: %s %s", cmd, r.out(), r.err()).isZero();
    }

    /** jblock's qemu-io, in this JVM; returns its stderr (asserting success). */
    static String jblockIo(Path image, List<String> commands, String... options) {
        List<String> argv = new ArrayList<>(List.of(options));
        for (String c : commands) {
            argv.add("-c");
            argv.add(c);
        }
        argv.add(image.toString());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Main.run("qemu-io", argv.toArray(new String[0]), new ByteArrayInputStream(new byte[0]), o, e);
        }
        String errText = err.toString(StandardCharsets.UTF_8);
        assertThat(status).as("jblock io %s: %s %s", commands, out, errText).isZero();
        return errText;
    }

    /** qemu-img info --output=json with the file name and allocated size left out. */
    static String infoJson(Path image) {
        QemuImgOracle.Run r = QemuImgOracle.qemu(List.of("info", "--output=json", "-U", image.toString()));
        assertThat(r.status()).as("qemu-img info %s: %s", image, r).isZero();
        return r.out().lines().filter(l -> !l.contains("\"filename\"") && !l.contains("\"actual-size\"")
                        && !l.contains("\"full-backing-filename\""))
                .reduce("", (a, b) -> a + b + "\n");
    }

    /** qemu-img check finds nothing wrong. */
    static void assertCheckClean(Path image) {
        QemuImgOracle.Run r = QemuImgOracle.qemu(List.of("check", image.toString()));
        assertThat(r.status()).as("qemu-img check %s: %s", image, r).isZero();
        assertThat(r.out()).startsWith("No errors were found on the image.");
    }

    /**
     * The bitmap's dirty map as QEMU reads it from the image: nbdinfo's
     * lines ("offset length 1 dirty" / "0 clean") over a qemu-nbd export.
     */
    static String dirtyMap(Path image, String bitmap) throws Exception {
        String qemuNbd = Peers.require("qemu-nbd");
        String nbdinfo = Peers.require("nbdinfo");
        Path sock = Files.createTempFile(Path.of("/tmp"), "bitmap", ".sock");
        Files.delete(sock);
        try (Peers.Server ignored = Peers.Server.start(List.of(qemuNbd, "-r", "-f", "qcow2", "-B", bitmap, "-k",
                sock.toString(), image.toAbsolutePath().toString()), sock, 0)) {
            // qemu-nbd creates the socket file (bind) a moment before it listens: a refused connection is retried.
            Peers.Result r = null;
            for (int attempt = 0; attempt < 100; attempt++) {
                r = Peers.run(60, List.of(nbdinfo, "--map=qemu:dirty-bitmap:" + bitmap,
                        "nbd+unix:///?socket=" + sock));
                if (r.exit() == 0 || !r.err().contains("Connection refused")) {
                    break;
                }
                Thread.sleep(50);
            }
            assertThat(r.exit()).as("nbdinfo on %s: %s", image, r.err()).isZero();
            return r.out();
        } finally {
            Files.deleteIfExists(sock);
        }
    }

    /** The dirty ranges of a map from {@link #dirtyMap}, as [start, end) pairs of merged runs. */
    static List<long[]> dirtyRanges(String map) {
        List<long[]> out = new ArrayList<>();
        for (String line : map.lines().toList()) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 3 || !f[2].equals("1")) {
                continue;
            }
            long start = Long.parseLong(f[0]);
            long end = start + Long.parseLong(f[1]);
            if (!out.isEmpty() && out.getLast()[1] == start) {
                out.getLast()[1] = end;
            } else {
                out.add(new long[] {start, end});
            }
        }
        return out;
    }

    /**
     * An image whose bitmaps are all "in use", as a QEMU process killed
     * while it had the image open leaves them: qemu-io writes, then sleeps
     * until it is killed.
     */
    static void leaveInUse(Path image, String write) throws Exception {
        // stdbuf: qemu-io's stdout is a pipe here, and its line must come out before the sleep.
        Process p = new ProcessBuilder("stdbuf", "-oL", Peers.require("qemu-io"), "-c", write, "-c", "sleep 100000",
                image.toString()).redirectErrorStream(true).start();
        // qemu-io prints the write's result once the write is done (the bitmaps were marked in use at open).
        var in = p.getInputStream();
        StringBuilder seen = new StringBuilder();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!seen.toString().contains("ops;") && System.nanoTime() < deadline) {
            int c = in.read();
            if (c < 0) {
                break;
            }
            seen.append((char) c);
        }
        p.destroyForcibly();
        p.waitFor(30, TimeUnit.SECONDS);
        assertThat(seen.toString()).as("qemu-io wrote before it was killed").contains("ops;");
    }
}
