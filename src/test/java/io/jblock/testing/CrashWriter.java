package io.jblock.testing;

import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;

import java.nio.ByteBuffer;

/**
 * A child process for crash tests: writes numbered blocks through a drive
 * opened from a -drive string, flushes every {@code flushEvery} writes and
 * prints "flushed N" once the flush covering blocks 0..N-1 is acknowledged,
 * and goes on writing until it is killed.
 *
 * <p>Block i (of {@link #BLOCK} bytes) is filled with the 8-byte value i,
 * wrapping around a disk of {@code blocks} blocks.
 */
public final class CrashWriter {
    public static final int BLOCK = 4096;

    private CrashWriter() {
    }

    public static void main(String[] args) throws Exception {
        String drive = args[0];
        int blocks = Integer.parseInt(args[1]);
        int flushEvery = Integer.parseInt(args[2]);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(drive))) {
            ByteBuffer b = ByteBuffer.allocateDirect(BLOCK);
            for (long i = 0; ; i++) {
                b.clear();
                while (b.hasRemaining()) {
                    b.putLong(i);
                }
                b.flip();
                d.write((i % blocks) * BLOCK, b, 0);
                if ((i + 1) % flushEvery == 0) {
                    d.flush();
                    System.out.println("flushed " + (i + 1));
                    System.out.flush();
                }
            }
        }
    }

    /** The value block {@code slot} holds after writes 0..written-1 (the last write that landed there). */
    public static long expectedValue(long slot, long written, int blocks) {
        long last = slot + ((written - 1 - slot) / blocks) * blocks;
        return last;
    }
}
