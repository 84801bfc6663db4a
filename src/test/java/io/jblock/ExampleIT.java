package io.jblock;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The README's library example runs as documented, against the built jar. */
class ExampleIT {
    @TempDir
    Path dir;

    @Test
    void theReadmeExampleRunsAndReadsBackWhatItWrote() throws Exception {
        Path project = Path.of(System.getProperty("jblock.projectDir", "."));
        Peers.jblock(); // asserts the jar is built
        String java = ProcessHandle.current().info().command().orElseThrow();
        Peers.Result r = Peers.run(120, List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                project.resolve("target/jblock.jar").toString(),
                project.resolve("examples/DriveExample.java").toString(), dir.resolve("example.img").toString()))
                .ok();
        assertThat(r.out()).contains("disk flushes under unsafe: 0", "read back: hello, jblock",
                "first run: 1048576 bytes, hole");
    }
}
