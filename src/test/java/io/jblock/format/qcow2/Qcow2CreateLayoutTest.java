package io.jblock.format.qcow2;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The arithmetic of new images, checked by its defining properties rather
 * than by numbers (the interop tests compare the numbers with qemu-img's).
 */
class Qcow2CreateLayoutTest {
    @Test
    void refcountMetadataIsTheSmallestThatCountsEverythingIncludingItself() {
        long seed = System.nanoTime();
        System.out.println("Qcow2CreateLayoutTest seed " + seed);
        Random r = new Random(seed);
        for (int i = 0; i < 2000; i++) {
            int clusterBits = 9 + r.nextInt(13);
            long clusterSize = 1L << clusterBits;
            int order = r.nextInt(7);
            long clusters = r.nextLong(1L << (1 + r.nextInt(36)));
            long[] m = Qcow2CreateLayout.refcountMetadata(clusters, clusterSize, order, false);
            long blocks = m[0];
            long table = m[1];
            long perBlock = clusterSize * 8 / (1L << order);
            long perTable = clusterSize / 8;
            assertThat(blocks * perBlock).as("blocks count all, seed %d", seed)
                    .isGreaterThanOrEqualTo(clusters + blocks + table);
            assertThat(table * perTable).as("table holds all blocks, seed %d", seed).isGreaterThanOrEqualTo(blocks);
            // One block fewer could not count the clusters alone.
            assertThat((blocks - 1) * perBlock).as("minimal, seed %d", seed).isLessThan(clusters + blocks + table);
            long[] generous = Qcow2CreateLayout.refcountMetadata(clusters, clusterSize, order, true);
            assertThat(generous[0]).isGreaterThanOrEqualTo(blocks);
            assertThat(generous[1]).isGreaterThanOrEqualTo(table);
        }
    }

    @Test
    void theFullyAllocatedSizeHoldsDataTablesAndRefcounts() {
        long seed = System.nanoTime();
        System.out.println("Qcow2CreateLayoutTest seed " + seed);
        Random r = new Random(seed);
        for (int i = 0; i < 500; i++) {
            int clusterBits = 9 + r.nextInt(13);
            long cs = 1L << clusterBits;
            long size = r.nextLong(1L << 40);
            boolean ext = clusterBits >= 14 && r.nextBoolean();
            long full = Qcow2Measure.preallocatedSize(size, cs, 4, ext);
            long data = (size + cs - 1) / cs * cs;
            long l2 = (data / cs + cs / (ext ? 16 : 8) - 1) / (cs / (ext ? 16 : 8));
            assertThat(full % cs).isZero();
            // header + data + L2 tables + at least one L1 cluster + refcount block + table
            assertThat(full).as("seed %d", seed).isGreaterThanOrEqualTo(cs + data + l2 * cs + 3 * cs);
        }
    }

    @Test
    void theRenderedHeaderReadsBackWithTheExtensionsQemuWrites() throws Exception {
        for (int version : new int[] {2, 3}) {
            for (int clusterBits : new int[] {9, 12, 13, 16, 21}) {
                var f = new Qcow2CreateHeader.Fields(version, clusterBits, 5L << 20, 1, 3L << clusterBits,
                        1L << clusterBits, 1, version == 3 ? Qcow2Header.INCOMPAT_DATA_FILE : 0,
                        version == 3 ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0, 0, 4, 0, "base.raw", "raw",
                        version == 3 ? "data.raw" : null);
                ByteBuffer b = Qcow2CreateHeader.render(f);
                assertThat(b.remaining()).isEqualTo(1 << clusterBits);
                Qcow2Header h = Qcow2Header.decode(b.duplicate());
                assertThat(h.version()).isEqualTo(version);
                assertThat(h.size()).isEqualTo(5L << 20);
                assertThat(h.l1TableOffset()).isEqualTo(3L << clusterBits);
                assertThat(h.refcountTableOffset()).isEqualTo(1L << clusterBits);
                Qcow2Extensions ext = Qcow2Extensions.decode(h, b.duplicate());
                assertThat(ext.backingFormat()).isEqualTo("raw");
                assertThat(Qcow2Children.backingName(h, b.duplicate())).isEqualTo("base.raw");
                if (version == 3) {
                    assertThat(ext.dataFile()).isEqualTo("data.raw");
                    assertThat(h.headerLength()).isEqualTo(112);
                }
            }
        }
    }
}
