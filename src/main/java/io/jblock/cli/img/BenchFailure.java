package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;

import java.util.concurrent.Phaser;

/**
 * The first failure of an {@code img bench} run, in qemu-img's words, and the
 * flushes started beside the requests (--no-drain), which the run waits for
 * before it reports. A failure stops the schedule: qemu-img exits at the
 * first failed request.
 */
final class BenchFailure {
    private final BenchSchedule schedule;
    /** One party per flush running beside the requests, plus the run's own. */
    private final Phaser flushes = new Phaser(1);
    private volatile String message;

    BenchFailure(BenchSchedule schedule) {
        this.schedule = schedule;
    }

    /** A read, write or drained flush failed. */
    void request(BlockException e) {
        fail("Failed request: " + e.errno().text());
    }

    /** Starts a flush on its own virtual thread, beside the requests in flight. */
    void flushBeside(Drive drive) {
        flushes.register();
        Thread.ofVirtual().start(() -> {
            try {
                drive.flush();
            } catch (BlockException e) {
                fail("Failed flush request: " + e.errno().text());
            } finally {
                flushes.arriveAndDeregister();
            }
        });
    }

    /** Waits for the flushes started beside the requests. */
    void awaitFlushes() {
        flushes.arriveAndAwaitAdvance();
    }

    /** The first failure's message, or null. */
    String message() {
        return message;
    }

    private synchronized void fail(String text) {
        if (message == null) {
            message = text;
        }
        schedule.stop();
    }
}
