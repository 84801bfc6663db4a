package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
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
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Images made by the real qemu-img and qemu-io (the oracle), and the checks
 * that compare jblock's reading of them with QEMU's.
 */
final class QemuImages {
    private QemuImages() {
    }

    static Peers.Result qemuImg(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Peers.require("qemu-img"));
        cmd.addAll(List.of(args));
        return Peers.run(120, cmd).ok();
    }

    /** Runs qemu-io commands on a qcow2 image, read-write. */
    static Peers.Result qemuIo(Path image, List<String> commands) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Peers.require("qemu-io"));
        cmd.addAll(List.of("-f", "qcow2"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        Peers.Result r = Peers.run(120, cmd).ok();
        assertThat(r.out()).as("qemu-io output for %s", commands).doesNotContain("failed");
        return r;
    }

    /**
     * Seeded random writes (patterned data, some zero-writes when the image is
     * version 3) inside {@code size}, aligned to {@code align}, each at most
     * {@code maxLength} long. Prints the seed, so a failure can be replayed.
     */
    static List<String> randomWrites(long seed, long size, int align, long maxLength, int count, boolean zeroes) {
        System.out.println("qcow2 random writes: seed " + seed + ", size " + size + ", align " + align);
        Random r = new Random(seed);
        List<String> cmds = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long len = align * (1 + (long) r.nextInt((int) Math.max(1, maxLength / align)));
            long off = align * (long) r.nextInt((int) ((size - len) / align + 1));
            if (zeroes && r.nextInt(5) == 0) {
                cmds.add("write -z " + off + " " + len);
            } else {
                cmds.add("write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " " + len);
            }
        }
        return cmds;
    }

    /** The image read by qemu-img convert -O raw: QEMU's view of the guest bytes. */
    static byte[] qemuRaw(Path image) throws IOException, InterruptedException {
        Path raw = image.resolveSibling(image.getFileName() + ".raw-by-qemu");
        qemuImg("convert", "-O", "raw", image.toString(), raw.toString());
        try {
            return Files.readAllBytes(raw);
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    /** Opens a qcow2 image as a drive: format qcow2, read-only, through the standard opener. */
    static Drive open(Path image) throws BlockException {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + image + ",format=qcow2,read-only=on"));
    }

    static byte[] readAll(Drive d, int chunk) throws BlockException {
        long size = d.length();
        byte[] all = new byte[(int) size];
        for (long off = 0; off < size; off += chunk) {
            int n = (int) Math.min(chunk, size - off);
            ByteBuffer b = ByteBuffer.wrap(all, (int) off, n).slice();
            d.read(off, b);
            assertThat(b.hasRemaining()).as("read at %d filled its buffer", off).isFalse();
        }
        return all;
    }

    /** Asserts jblock reads {@code image} exactly as qemu-img convert does, whole and at random spots. */
    static void assertReadsAsQemu(Path image, long seed) throws Exception {
        byte[] expected = qemuRaw(image);
        try (Drive d = open(image)) {
            assertThat(d.length()).as("virtual size").isEqualTo(expected.length);
            byte[] actual = readAll(d, 1 << 20);
            assertSameBytes(actual, expected, "whole image in 1 MiB reads");
            Random r = new Random(seed);
            for (int i = 0; i < 200; i++) {
                int off = r.nextInt(expected.length);
                int len = 1 + r.nextInt(Math.min(expected.length - off, 300_000));
                ByteBuffer b = ByteBuffer.allocate(len);
                d.read(off, b);
                byte[] want = java.util.Arrays.copyOfRange(expected, off, off + len);
                assertSameBytes(b.array(), want, "read of " + len + " bytes at " + off + " (seed " + seed + ")");
            }
        }
    }

    static void assertSameBytes(byte[] actual, byte[] expected, String what) {
        assertThat(actual.length).as(what + ": length").isEqualTo(expected.length);
        int mismatch = java.util.Arrays.mismatch(actual, expected);
        assertThat(mismatch).as(what + ": first differing byte").isEqualTo(-1);
    }
}
