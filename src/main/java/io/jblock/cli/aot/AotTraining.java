package io.jblock.cli.aot;

import io.jblock.cli.Main;
import io.jblock.nbd.Nbd;
import io.jblock.nbd.NbdClient;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;

/**
 * The training run of the JDK's ahead-of-time cache (JEP 483/514), made by
 * the build: {@code java -XX:AOTCacheOutput=target/jblock.aot -cp
 * target/jblock.jar io.jblock.cli.aot.AotTraining}. It runs the short-lived
 * commands people start most (create, info, check, map, snapshot, io, bench,
 * convert) on small scratch images, so the classes they load and link are in
 * the cache and {@code bin/jblock} starts them from it; a second run
 * ({@code AotTraining nbd}) serves an image over NBD to an in-process client
 * for the NBD server's own cache, {@code target/jblock-nbd.aot}. What the
 * commands print is thrown away; a failure here only makes the cache less
 * complete, never the build fail.
 *
 * <p>It ends with {@link System#exit}, as {@code Main.main} does: exit looks
 * up the System.Logger for "java.lang.Runtime", and the classes of that
 * lookup are then in the cache too.
 */
public final class AotTraining {
    private AotTraining() {
    }

    /**
     * Trains the command-line tools, or with the argument {@code nbd} only
     * the NBD server ({@code target/jblock-nbd.aot}, the cache bin/jblock
     * gives {@code jblock nbd}): a cache holds every class it was trained
     * with, all of them loaded and relocated when the JVM starts, and the
     * daemon's resident memory grows with the cache's size.
     */
    public static void main(String[] args) throws IOException {
        Path dir = Files.createTempDirectory("jblock-aot");
        try {
            if (args.length > 0 && args[0].equals("nbd")) {
                // Made without qemu-img create, whose classes the server's cache need not hold.
                Path raw = dir.resolve("t.raw");
                try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
                    f.setLength(4L << 20);
                }
                nbd(dir, raw.toString());
            } else {
                tools(dir);
            }
        } finally {
            try (var s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        System.out.flush();
        System.exit(0);
    }

    private static void tools(Path dir) {
        String qcow2 = dir.resolve("t.qcow2").toString();
        String raw = dir.resolve("t.raw").toString();
        run("qemu-img", "create", "-q", "-f", "qcow2", qcow2, "4M");
        run("qemu-img", "create", "-q", "-f", "raw", raw, "4M");
        String meta = dir.resolve("m.qcow2").toString();
        String out = dir.resolve("o.img").toString();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", meta, "4M");
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "info", qcow2);
            run("qemu-img", "info", "--output=json", qcow2);
            run("qemu-img", "info", "-f", "raw", raw);
            run("qemu-io", "-f", "raw", "-c", "write -P 1 0 64k", "-c", "read -P 1 0 64k", raw);
            run("qemu-io", "-f", "qcow2", "-c", "read 0 64k", qcow2);
            run("qemu-img", "bench", "-f", "raw", "-w", "-c", "2000", "-d", "8", raw);
            // Writethrough: FUA emulation and the flushes its writes share (FlushBatcher).
            run("qemu-img", "bench", "-f", "raw", "-w", "-t", "writethrough", "-c", "200", "-d", "8", raw);
            run("qemu-img", "bench", "-f", "raw", "-c", "2000", "-i", "io_uring", raw);
            run("qemu-img", "bench", "-f", "qcow2", "-c", "200", qcow2);
            // qcow2 writes (in place and allocating, 4 KiB and 1 MiB) and convert both ways.
            run("qemu-img", "bench", "-f", "qcow2", "-w", "-t", "unsafe", "-c", "2000", "-d", "8", "-S", "65536",
                    meta);
            run("qemu-img", "bench", "-f", "qcow2", "-w", "-t", "none", "-c", "8", "-d", "4", "-s", "1M", meta);
            run("qemu-img", "bench", "-f", "qcow2", "-w", "-c", "64", "-d", "4", "-s", "64k", qcow2);
            run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out);
            run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, out);
            run("qemu-img", "--help");
            run("qemu-img", "info");
            // Inspection commands: check (human and JSON), map, measure, compare, internal snapshots.
            run("qemu-img", "check", qcow2);
            run("qemu-img", "check", "--output=json", qcow2);
            run("qemu-img", "map", qcow2);
            run("qemu-img", "map", "--output=json", qcow2);
            run("qemu-img", "measure", "-O", "qcow2", qcow2);
            run("qemu-img", "compare", qcow2, meta);
            run("qemu-img", "snapshot", "-c", "s" + i, qcow2);
            run("qemu-img", "snapshot", "-l", qcow2);
            run("qemu-img", "info", "--output=json", raw);
        }
    }

    /**
     * {@code qemu-nbd} serving the raw image to one in-process client, which
     * reads, writes (with and without FUA), flushes and disconnects; without
     * {@code -t} the server then returns. A server that does not come up
     * leaves only its thread behind, which the exit at the end stops.
     */
    private static void nbd(Path dir, String image) {
        Path sock = dir.resolve("n.sock");
        Thread server = Thread.ofPlatform().daemon().start(
                () -> run("qemu-nbd", "-f", "raw", "--cache=writeback", "-k", sock.toString(), image));
        try {
            for (int i = 0; i < 500 && !Files.exists(sock); i++) {
                Thread.sleep(10);
            }
            try (NbdClient c = NbdClient.connectUnix(sock)) {
                c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
                c.structuredReplies();
                c.info("", true);
                byte[] small = new byte[4096];
                byte[] large = new byte[65536];
                for (int i = 0; i < 2000; i++) {
                    long off = (i * 7919L % 1024) * 4096;
                    c.write(off, small, 0);
                    c.read(off, small.length);
                }
                for (int i = 0; i < 50; i++) {
                    c.write(i * 65536L, large, Nbd.CMD_FLAG_FUA);
                    c.read(i * 65536L, large.length);
                }
                c.flush();
                c.disconnect();
            }
            server.join(10_000);
        } catch (IOException | RuntimeException e) {
            // The cache then lacks what did not run.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void run(String prog, String... args) {
        PrintStream sink = new PrintStream(OutputStream.nullOutputStream());
        try {
            Main.run(prog, args, new ByteArrayInputStream(new byte[0]), sink, sink);
        } catch (RuntimeException e) {
            // A command that breaks still trained what it loaded before it broke.
        }
    }
}
