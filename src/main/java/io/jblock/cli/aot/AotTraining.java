package io.jblock.cli.aot;

import io.jblock.cli.Main;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;

/**
 * The training run of the JDK's ahead-of-time cache (JEP 483/514), made by
 * the build: {@code java -XX:AOTCacheOutput=target/jblock.aot -cp
 * target/jblock.jar io.jblock.cli.aot.AotTraining}. It runs the short-lived
 * commands people start most (create, info, io, bench) on small scratch
 * images, so the classes they load and link are in the cache and
 * {@code bin/jblock} starts them from it. What the commands print is thrown
 * away; a failure here only makes the cache less complete, never the build
 * fail.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) throws IOException {
        Path dir = Files.createTempDirectory("jblock-aot");
        try {
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
            }
        } finally {
            try (var s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
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
