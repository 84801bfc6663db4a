package io.jblock.engine;

import java.io.IOException;

/**
 * A system call failed: which call, and the errno it set, with glibc's text
 * for it. The file protocol turns the number into the error its callers see.
 */
public final class ErrnoException extends IOException {
    private final int errno;

    public ErrnoException(String call, int errno) {
        super(call + " failed: " + Libc.strerror(errno));
        this.errno = errno;
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
