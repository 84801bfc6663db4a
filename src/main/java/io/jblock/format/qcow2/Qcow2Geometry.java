package io.jblock.format.qcow2;

/**
 * The sizes that follow from the header: clusters, subclusters, L2 tables.
 * An L2 table fills one cluster; its entries are 8 bytes, or 16 with
 * extended L2, where each cluster has 32 subclusters.
 */
record Qcow2Geometry(int clusterBits, boolean extendedL2, boolean externalData, boolean zeroClustersAllowed) {
    static final int SUBCLUSTERS_PER_CLUSTER = 32;

    static Qcow2Geometry of(Qcow2Header h) {
        return new Qcow2Geometry(h.clusterBits(), h.hasExtendedL2(), h.hasDataFile(), h.version() >= 3);
    }

    long clusterSize() {
        return 1L << clusterBits;
    }

    int l2EntrySize() {
        return extendedL2 ? 16 : 8;
    }

    int l2EntryWords() {
        return extendedL2 ? 2 : 1;
    }

    /** log2 of the entries in one L2 table. */
    int l2Bits() {
        return clusterBits - (extendedL2 ? 4 : 3);
    }

    long l2Entries() {
        return 1L << l2Bits();
    }

    int subclustersPerCluster() {
        return extendedL2 ? SUBCLUSTERS_PER_CLUSTER : 1;
    }

    int subclusterBits() {
        return extendedL2 ? clusterBits - 5 : clusterBits;
    }

    long subclusterSize() {
        return 1L << subclusterBits();
    }

    /** Guest bytes one L1 entry maps. */
    long l1Span() {
        return 1L << (clusterBits + l2Bits());
    }
}
