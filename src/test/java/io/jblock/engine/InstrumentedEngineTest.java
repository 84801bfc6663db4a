package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class InstrumentedEngineTest {
    @TempDir
    Path dir;

    @Test
    void countsWhatReachesEachOpenFileSeparately() throws Exception {
        Path a = dir.resolve("a.img");
        Path b = dir.resolve("b.img");
        Files.write(a, new byte[8192]);
        Files.write(b, new byte[8192]);
        InstrumentedEngine engine = new InstrumentedEngine(ThreadsEngine.INSTANCE);
        assertThat(engine.name()).isEqualTo("threads");
        try (EngineFile fa = engine.open(a, false, false); EngineFile fb = engine.open(b, false, false)) {
            fa.write(ByteBuffer.allocate(10), 0);
            fa.write(ByteBuffer.allocate(10), 100);
            fa.read(ByteBuffer.allocate(10), 0);
            fa.datasync();
            fa.punchHole(0, 4096);
            fa.zeroRange(0, 4096, true);
            fa.allocate(0, 4096);
            fb.read(ByteBuffer.allocate(1), 0);
        }
        InstrumentedEngine.Counters ca = engine.counters(a);
        assertThat(ca.writes()).isEqualTo(2);
        assertThat(ca.reads()).isEqualTo(1);
        assertThat(ca.datasyncs()).isEqualTo(1);
        assertThat(ca.fallocates()).isEqualTo(3);
        InstrumentedEngine.Counters cb = engine.counters(b);
        assertThat(cb.reads()).isEqualTo(1);
        assertThat(cb.writes() + cb.datasyncs() + cb.fallocates()).isZero();
        assertThatThrownBy(() -> engine.counters(dir.resolve("never"))).isInstanceOf(IllegalArgumentException.class);
    }
}
