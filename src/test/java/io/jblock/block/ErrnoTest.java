package io.jblock.block;

import io.jblock.engine.ErrnoException;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Errno keeps every number Linux defines, with glibc's text for it (the text
 * qemu-io and qemu-img print), checked against strerror itself.
 */
class ErrnoTest {
    @Test
    void everyLinuxErrnoKeepsItsNumberAndGlibcsText() {
        for (int n = 1; n <= 133; n++) {
            if (n == 41 || n == 58) {
                continue; // Linux has no errno 41 or 58 (EWOULDBLOCK and EDEADLOCK are aliases)
            }
            Errno e = Errno.of(n);
            assertThat(e.number()).as("errno %d", n).isEqualTo(n);
            assertThat(e.text()).as("errno %d (%s)", n, e).isEqualTo(new ErrnoException("x", n).reason());
        }
    }

    @Test
    void numbersLinuxDoesNotDefineBecomeEio() {
        assertThat(Errno.of(0)).isEqualTo(Errno.EIO);
        assertThat(Errno.of(-5)).isEqualTo(Errno.EIO);
        assertThat(Errno.of(41)).isEqualTo(Errno.EIO);
        assertThat(Errno.of(100_000)).isEqualTo(Errno.EIO);
    }

    @Test
    void theNumbersTheBlockLayerNamesAreUnchanged() {
        assertThat(Errno.of(95)).isEqualTo(Errno.ENOTSUP);
        assertThat(Errno.of(11)).isEqualTo(Errno.EAGAIN);
        assertThat(Errno.of(28)).isEqualTo(Errno.ENOSPC);
        assertThat(Errno.of(4).text()).isEqualTo("Interrupted system call");
    }
}
