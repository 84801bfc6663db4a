package io.jblock.format.qcow2;

import io.jblock.testing.CrashWriter;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A qcow2 drive under cache=unsafe, in its own JVM, killed with SIGKILL right
 * after a flush was acknowledged: the flush wrote every dirty L2 slice and
 * refcount block to the OS, so {@code qemu-img check} finds no corruption
 * (leaks are allowed: clusters allocated after the flush) and QEMU reads every
 * acknowledged write.
 */
class Qcow2ProcessCrashTest {
    static final int BLOCKS = 4096;
    static final int FLUSH_EVERY = 16;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"cluster_size=4k", "cluster_size=512,refcount_bits=64", "compat=0.10,cluster_size=4k",
            "extended_l2=on,cluster_size=32k"})
    void sigkillRightAfterAFlushUnderUnsafeLosesNoAcknowledgedWrite(String options) throws Exception {
        Path img = dir.resolve("disk.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(),
                Long.toString((long) BLOCKS * CrashWriter.BLOCK));
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), CrashWriter.class.getName(),
                "file=" + img + ",format=qcow2,cache=unsafe", String.valueOf(BLOCKS), String.valueOf(FLUSH_EVERY)));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        long acknowledged = 0;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
            String line;
            while ((line = out.readLine()) != null) {
                assertThat(line).startsWith("flushed ");
                acknowledged = Long.parseLong(line.substring(8));
                if (acknowledged >= BLOCKS / 2) {
                    p.destroyForcibly(); // SIGKILL on Linux, while the writer allocates more
                    break;
                }
            }
        }
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(acknowledged).as("the writer acknowledged flushes").isGreaterThanOrEqualTo(BLOCKS / 2);

        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check: 0 clean or 3 leaks only; %s", check.out()).isIn(0, 3);
        assertThat(check.out()).as("qemu-img check").doesNotContain("ERROR").doesNotContain("corruption");

        ByteBuffer guest = ByteBuffer.wrap(QemuImages.qemuRaw(img));
        for (int slot = 0; slot < acknowledged; slot++) {
            long expected = CrashWriter.expectedValue(slot, acknowledged, BLOCKS);
            long first = guest.getLong(slot * CrashWriter.BLOCK);
            // The writer may have gone on (even around the disk) before it was killed: later values are fine.
            assertThat(first).as("slot %d", slot).isGreaterThanOrEqualTo(expected);
            assertThat(first % BLOCKS).as("slot %d holds its own writes", slot).isEqualTo(slot);
            if (first == expected) {
                assertThat(guest.getLong((slot + 1) * CrashWriter.BLOCK - 8)).as("slot %d complete", slot)
                        .isEqualTo(expected);
            }
        }
    }
}
