package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheMode;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;

import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The library's front door: open a disk image as a {@link Drive} from a
 * {@code -drive} string or with a builder.
 *
 * <pre>{@code
 * try (Drive d = Drives.open("file=disk.img,format=raw,cache=unsafe")) { ... }
 *
 * try (Drive d = Drives.builder(Path.of("disk.img")).format("raw")
 *         .cache(CacheMode.UNSAFE).readOnly(true).open()) { ... }
 * }</pre>
 *
 * Both accept what QEMU's {@code -drive} accepts and fail with its messages
 * (a {@link BlockException} whose message is QEMU's text).
 */
public final class Drives {
    private Drives() {
    }

    /**
     * Opens a drive from a {@code -drive} string, e.g.
     * {@code "file=disk.img,format=raw,cache=unsafe"}. Without {@code format=}
     * the format is probed (warnings are dropped; use the builder to see them).
     */
    public static Drive open(String driveOptions) throws BlockException {
        return DriveOpener.standard().open(DriveConfig.parseDrive(driveOptions));
    }

    /** A builder for a drive over the image at {@code image}. */
    public static Builder builder(Path image) {
        return new Builder(Objects.requireNonNull(image, "image"));
    }

    /**
     * Settings for one drive, each defaulting as {@code -drive} does:
     * format probed, cache=writeback, writable, discard=ignore,
     * detect-zeroes=off, aio=threads, no snapshot. Not thread-safe.
     */
    public static final class Builder {
        private final Path image;
        private String format;
        private CacheMode cache = CacheMode.WRITEBACK;
        private boolean readOnly;
        private boolean snapshot;
        private DiscardMode discard = DiscardMode.IGNORE;
        private DetectZeroes detectZeroes = DetectZeroes.OFF;
        private AioMode aio = AioMode.THREADS;
        private String id = "";
        private Consumer<String> warnings = w -> { };

        private Builder(Path image) {
            this.image = image;
        }

        /** The image format ("raw", "qcow2"); null to probe it. */
        public Builder format(String format) {
            this.format = format;
            return this;
        }

        /** The cache mode: write cache, O_DIRECT and no-flush at once. */
        public Builder cache(CacheMode mode) {
            this.cache = Objects.requireNonNull(mode, "mode");
            return this;
        }

        /** Refuse writes; the image is opened read-only. */
        public Builder readOnly(boolean readOnly) {
            this.readOnly = readOnly;
            return this;
        }

        /** Send writes to a temporary overlay dropped at close; the image is never written. */
        public Builder snapshot(boolean snapshot) {
            this.snapshot = snapshot;
            return this;
        }

        /** Whether discards reach the image (unmap) or are dropped (ignore). */
        public Builder discard(DiscardMode discard) {
            this.discard = Objects.requireNonNull(discard, "discard");
            return this;
        }

        /** What to do with writes of zeroes; unmap needs discard=unmap. */
        public Builder detectZeroes(DetectZeroes detectZeroes) {
            this.detectZeroes = Objects.requireNonNull(detectZeroes, "detectZeroes");
            return this;
        }

        /** The I/O engine of the file. */
        public Builder aio(AioMode aio) {
            this.aio = Objects.requireNonNull(aio, "aio");
            return this;
        }

        /** The drive's id. */
        public Builder id(String id) {
            this.id = Objects.requireNonNull(id, "id");
            return this;
        }

        /** Receives QEMU's warnings, such as the one for a probed raw image. */
        public Builder warnings(Consumer<String> sink) {
            this.warnings = Objects.requireNonNull(sink, "sink");
            return this;
        }

        /** Opens the drive; the caller closes it. */
        public Drive open() throws BlockException {
            DriveConfig c = new DriveConfig();
            c.id = id;
            // The path goes in as an option, not a file name, so it is never read as "proto:..." or json:.
            boolean protocol = format != null && DriverRegistry.standard().find(format)
                    .map(io.jblock.block.BlockDriver::isProtocol).orElse(false);
            if (format != null) {
                c.options.put("driver", format);
            }
            c.options.put(protocol ? "filename" : "file.filename", image.toString());
            c.cache = cache.options();
            c.readOnly = readOnly;
            c.snapshot = snapshot;
            c.discard = discard;
            c.detectZeroes = detectZeroes;
            c.aio = aio;
            c.warnings = warnings;
            return DriveOpener.standard().open(c);
        }
    }
}
