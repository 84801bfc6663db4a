package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

class ThreadsEngineSpaceTest {
    @TempDir
    Path dir;

    @Test
    void smoke() throws Exception {
        Path p = dir.resolve("a.img");
        byte[] data = new byte[1 << 20];
        Arrays.fill(data, (byte) 7);
        Files.write(p, data);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, true)) {
            System.out.println("alignment " + f.alignment() + " alloc " + f.allocatedSize());
            assertThat(f.punchHole(65536, 65536)).isTrue();
            System.out.println("alloc " + f.allocatedSize() + " hole " + f.seekHole(0) + " data " + f.seekData(65536));
        }
    }
}
