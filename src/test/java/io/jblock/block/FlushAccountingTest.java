package io.jblock.block;

import io.jblock.format.RawNode;
import io.jblock.protocol.MemoryNode;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

class FlushAccountingTest {
    @Test
    void aFlushWithNothingWrittenDoesNoDiskFlush() throws Exception {
        try (Drive d = new Drive(RawNode.over(MemoryNode.scratch(1 << 20)))) {
            d.write(0, ByteBuffer.allocate(512), 0);
            d.flush();
            d.flush();
            assertThat(d.stats().flushRequests()).isEqualTo(2);
            assertThat(d.stats().diskFlushes()).isEqualTo(1);
        }
    }
}
