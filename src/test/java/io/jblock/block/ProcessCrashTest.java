package io.jblock.block;

import io.jblock.testing.CrashWriter;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * cache=unsafe skips the trip to the medium, not the trip to the OS: a
 * process killed with SIGKILL right after a flush was acknowledged loses
 * none of the writes that flush covered. (A host crash may lose them; that is
 * the mode's bargain, proven elsewhere with power-cut replay.)
 */
class ProcessCrashTest {
    static final int BLOCKS = 256;
    static final int FLUSH_EVERY = 16;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "cache={0}")
    @ValueSource(strings = {"unsafe", "writeback"})
    void sigkillRightAfterAFlushLosesNoAcknowledgedWrite(String cache) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[BLOCKS * CrashWriter.BLOCK]);
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), CrashWriter.class.getName(),
                "file=" + img + ",format=raw,cache=" + cache, String.valueOf(BLOCKS), String.valueOf(FLUSH_EVERY)));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        long acknowledged = 0;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
            String line;
            // Wait until the writer has wrapped around the disk once and a bit, then kill it
            // right after reading an acknowledgement, while it is already writing more.
            while ((line = out.readLine()) != null) {
                assertThat(line).startsWith("flushed ");
                acknowledged = Long.parseLong(line.substring(8));
                if (acknowledged >= BLOCKS + 5 * FLUSH_EVERY) {
                    p.destroyForcibly(); // SIGKILL on Linux
                    break;
                }
            }
        }
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(acknowledged).as("the writer acknowledged flushes").isGreaterThanOrEqualTo(BLOCKS);
        // Every slot holds the value of the last acknowledged write to it, or a later one.
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer b = ByteBuffer.allocate(CrashWriter.BLOCK);
            for (int slot = 0; slot < BLOCKS; slot++) {
                b.clear();
                ch.read(b, (long) slot * CrashWriter.BLOCK);
                long expected = CrashWriter.expectedValue(slot, acknowledged, BLOCKS);
                long first = b.getLong(0);
                long last = b.getLong(CrashWriter.BLOCK - 8);
                assertThat(first).as("slot %d", slot).isGreaterThanOrEqualTo(expected);
                assertThat(first % BLOCKS).as("slot %d holds its own writes", slot).isEqualTo(slot);
                // Torn blocks are possible only for writes after the acknowledged flush.
                if (first == expected) {
                    assertThat(last).as("slot %d complete", slot).isEqualTo(expected);
                }
            }
        }
    }
}
