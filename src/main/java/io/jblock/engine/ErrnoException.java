package io.jblock.engine;

import java.io.IOException;

/**
 * A system call failed: which call, and the errno it set, with glibc's text
 * for it. The file protocol turns the number into the error its callers see.
 */
public final class ErrnoException extends IOException {
    private final String call;
    private final int errno;

    public ErrnoException(String call, int errno) {
        this.call = call;
        this.errno = errno;
    }

    /**
     * "call failed: text", built when asked: most of these are answers, not
     * failures (SEEK_DATA's ENXIO at the end of the data, EAGAIN), and
     * strerror's downcall would otherwise be linked in every run for a text
     * nobody reads.
     */
    @Override
    public String getMessage() {
        return call + " failed: " + Libc.strerror(errno);
    }

    /** The Linux errno value. */
    public int errno() {
        return errno;
    }

    /** glibc's text for the errno alone ("No such file or directory"). */
    public String reason() {
        return Libc.strerror(errno);
    }
}
