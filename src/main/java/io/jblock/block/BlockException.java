package io.jblock.block;

import java.io.IOException;

/**
 * A failed block request or open. Every failure carries the {@link Errno} a
 * POSIX caller would see, so tools can print QEMU's text and NBD can send the
 * matching error code. Subclasses say what kind of failure it is: a damaged
 * image, a feature jblock does not support, or a request that was wrong.
 */
public class BlockException extends IOException {
    private final Errno errno;

    public BlockException(Errno errno, String message) {
        super(message);
        this.errno = errno;
    }

    public BlockException(Errno errno, String message, Throwable cause) {
        super(message, cause);
        this.errno = errno;
    }

    public Errno errno() {
        return errno;
    }

    /** The image's metadata is inconsistent or hostile; never retried. */
    public static final class Corrupt extends BlockException {
        public Corrupt(String message) {
            super(Errno.EIO, message);
        }
    }

    /** The image or request needs a feature jblock does not implement. */
    public static final class Unsupported extends BlockException {
        public Unsupported(String message) {
            super(Errno.ENOTSUP, message);
        }
    }

    /** The request itself was wrong: out of range, misaligned, or not allowed on this node. */
    public static final class BadRequest extends BlockException {
        public BadRequest(Errno errno, String message) {
            super(errno, message);
        }
    }

    /** Wraps a failure of the host's I/O, keeping what the OS said. */
    public static BlockException io(String what, IOException cause) {
        if (cause instanceof BlockException b) {
            return b;
        }
        return new BlockException(Errno.EIO, what + ": " + cause.getMessage(), cause);
    }
}
