package io.jblock.format.qcow2;

import io.jblock.block.Errno;

/**
 * What one run of {@link Qcow2Check} found and repaired: QEMU's
 * BdrvCheckResult with its fragmentation figures (BlockFragInfo). Counts are
 * filled in by the check as it goes; {@link #failure()} is set when the check
 * could not complete (QEMU's negative return), in which case qemu-img prints
 * "Check failed: " and the error's text instead of the counts.
 */
public final class Qcow2CheckResult {
    long checkErrors;
    long corruptions;
    long leaks;
    long corruptionsFixed;
    long leaksFixed;
    long imageEndOffset;
    long totalClusters;
    long allocatedClusters;
    long fragmentedClusters;
    long compressedClusters;
    Errno failure;

    Qcow2CheckResult() {
    }

    /** Internal errors: the check could not look at something (I/O errors, a refcount it could not read). */
    public long checkErrors() {
        return checkErrors;
    }

    /** Inconsistencies that may lose data: references the refcounts do not cover, broken tables. */
    public long corruptions() {
        return corruptions;
    }

    /** Clusters with a refcount higher than their references: wasted space, no harm to data. */
    public long leaks() {
        return leaks;
    }

    public long corruptionsFixed() {
        return corruptionsFixed;
    }

    public long leaksFixed() {
        return leaksFixed;
    }

    /** One past the last byte of the highest cluster in use (by refcount or by reference). */
    public long imageEndOffset() {
        return imageEndOffset;
    }

    /** Guest clusters: the virtual size in clusters. */
    public long totalClusters() {
        return totalClusters;
    }

    public long allocatedClusters() {
        return allocatedClusters;
    }

    public long fragmentedClusters() {
        return fragmentedClusters;
    }

    public long compressedClusters() {
        return compressedClusters;
    }

    /** Why the check did not complete, or null when it did. */
    public Errno failure() {
        return failure;
    }

    /** Whether the image was found (or left) without corruptions or internal errors. */
    public boolean consistent() {
        return failure == null && checkErrors == 0 && corruptions == 0;
    }

    /** A copy, for the "result before this comparison" QEMU keeps while it decides whether to repair. */
    Qcow2CheckResult copy() {
        Qcow2CheckResult c = new Qcow2CheckResult();
        c.setTo(this);
        return c;
    }

    /** QEMU's qcow2_add_check_result without the allocation figures: the counts of another part of the check. */
    void add(Qcow2CheckResult o) {
        checkErrors += o.checkErrors;
        corruptions += o.corruptions;
        leaks += o.leaks;
        corruptionsFixed += o.corruptionsFixed;
        leaksFixed += o.leaksFixed;
    }

    void setTo(Qcow2CheckResult o) {
        checkErrors = o.checkErrors;
        corruptions = o.corruptions;
        leaks = o.leaks;
        corruptionsFixed = o.corruptionsFixed;
        leaksFixed = o.leaksFixed;
        imageEndOffset = o.imageEndOffset;
        totalClusters = o.totalClusters;
        allocatedClusters = o.allocatedClusters;
        fragmentedClusters = o.fragmentedClusters;
        compressedClusters = o.compressedClusters;
        failure = o.failure;
    }

    @Override
    public String toString() {
        return "check-errors=" + checkErrors + " corruptions=" + corruptions + " leaks=" + leaks
                + " corruptions-fixed=" + corruptionsFixed + " leaks-fixed=" + leaksFixed + " image-end-offset="
                + imageEndOffset + " clusters=" + allocatedClusters + "/" + totalClusters + " fragmented="
                + fragmentedClusters + " compressed=" + compressedClusters
                + (failure != null ? " failed: " + failure.text() : "");
    }
}
