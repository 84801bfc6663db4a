package io.jblock.format.qcow2;

import org.junit.jupiter.api.Test;

import static io.jblock.format.qcow2.Qcow2L2Entry.Type.COMPRESSED;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.INVALID;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.NORMAL;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.UNALLOCATED_ALLOC;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.UNALLOCATED_PLAIN;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.ZERO_ALLOC;
import static io.jblock.format.qcow2.Qcow2L2Entry.Type.ZERO_PLAIN;
import static io.jblock.format.qcow2.Qcow2L2Entry.type;
import static org.assertj.core.api.Assertions.assertThat;

/** L2 entries decoded as docs/interop/qcow2.txt draws them. */
class Qcow2L2EntryTest {
    private static final long HOST = 0x50000L;

    @Test
    void standardEntriesAreDataZeroOrUnallocated() {
        assertThat(type(0, 0, 0, false, false)).isEqualTo(UNALLOCATED_PLAIN);
        assertThat(type(Qcow2L2Entry.COPIED | HOST, 0, 0, false, false)).isEqualTo(NORMAL);
        assertThat(type(Qcow2L2Entry.ZERO, 0, 0, false, false)).isEqualTo(ZERO_PLAIN);
        assertThat(type(HOST | Qcow2L2Entry.ZERO, 0, 0, false, false)).isEqualTo(ZERO_ALLOC);
        assertThat(type(Qcow2L2Entry.COMPRESSED | 123, 0, 0, false, false)).isEqualTo(COMPRESSED);
    }

    @Test
    void inAnExternalDataFileHostOffsetZeroIsRealWhenCopiedIsSet() {
        assertThat(type(Qcow2L2Entry.COPIED, 0, 0, false, true)).isEqualTo(NORMAL);
        assertThat(type(Qcow2L2Entry.COPIED, 0, 0, false, false)).isEqualTo(UNALLOCATED_PLAIN);
    }

    @Test
    void extendedEntriesHaveAllocatedBitsLowAndZeroBitsHigh() {
        long bitmap = 0b01L | (0b10L << 32); // subcluster 0 allocated, subcluster 1 zero
        assertThat(type(HOST, bitmap, 0, true, false)).isEqualTo(NORMAL);
        assertThat(type(HOST, bitmap, 1, true, false)).isEqualTo(ZERO_ALLOC);
        assertThat(type(HOST, bitmap, 2, true, false)).isEqualTo(UNALLOCATED_ALLOC);
        assertThat(type(0, 0b10L << 32, 1, true, false)).isEqualTo(ZERO_PLAIN);
        assertThat(type(0, 0, 31, true, false)).isEqualTo(UNALLOCATED_PLAIN);
    }

    @Test
    void contradictoryExtendedEntriesAreInvalid() {
        assertThat(type(HOST, 1L | (1L << 32), 5, true, false)).as("allocated and zero at once").isEqualTo(INVALID);
        assertThat(type(0, 1L << 7, 0, true, false)).as("allocated without a host cluster").isEqualTo(INVALID);
    }

    @Test
    void theZeroBitIsReservedInExtendedEntries() {
        assertThat(type(HOST | Qcow2L2Entry.ZERO, 1, 0, true, false)).isEqualTo(NORMAL);
    }

    @Test
    void compressedDescriptorSplitsAtBit62MinusClusterBitsMinus8() {
        int clusterBits = 16; // x = 62 - 8 = 54
        long offset = 0x123456789L;
        long extraSectors = 3;
        long entry = Qcow2L2Entry.COMPRESSED | extraSectors << 54 | offset;
        assertThat(Qcow2L2Entry.compressedOffset(entry, clusterBits)).isEqualTo(offset);
        // Four sectors counted, less the 0x189 bytes of the first sector before the data.
        assertThat(Qcow2L2Entry.compressedSize(entry, clusterBits)).isEqualTo(4 * 512 - 0x189);
    }

    @Test
    void compressedSizeOfTheLargestClustersStaysBounded() {
        int clusterBits = 21; // x = 62 - 13 = 49; 13 bits of sectors
        long entry = Qcow2L2Entry.COMPRESSED | -1L >>> 2;
        assertThat(Qcow2L2Entry.compressedSize(entry, clusterBits)).isLessThanOrEqualTo(2 << 21);
        assertThat(Qcow2L2Entry.compressedOffset(entry, clusterBits)).isEqualTo((1L << 49) - 1);
    }
}
