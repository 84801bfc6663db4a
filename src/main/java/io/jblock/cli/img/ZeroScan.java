package io.jblock.cli.img;

import java.nio.ByteBuffer;

/**
 * Zero detection for {@code convert -S}, in 512-byte sectors of a buffer,
 * with qemu-img's rules (is_allocated_sectors and its _min variant): a run
 * ends where sectors change between zero and non-zero, and its end is moved
 * to an {@code alignment} boundary of the target (up for data, down for
 * zeroes; a zero run shorter than the distance counts as data), so writes
 * stay aligned. Zero runs shorter than {@code min} sectors inside data are
 * written as data rather than break the write up.
 */
final class ZeroScan {
    private static final int SECTOR = 512;
    private static final byte[] ZEROES = new byte[1 << 16];
    private static final ByteBuffer ZERO_SECTOR = ByteBuffer.allocateDirect(SECTOR);

    /** A run at the start of the scanned sectors: its length, and whether it must be written. */
    record Run(int sectors, boolean allocated) {
    }

    private ZeroScan() {
    }

    /**
     * The first run of the {@code n} sectors at sector {@code first} of
     * {@code buf}, which land at sector {@code targetSector} of the target.
     */
    static Run allocated(ByteBuffer buf, int first, int n, long targetSector, int alignment) {
        if (n <= 0) {
            return new Run(0, false);
        }
        boolean zero = isZeroSector(buf, first);
        int i = 1;
        while (i < n && isZeroSector(buf, first + i) == zero) {
            i++;
        }
        if (i == n) {
            // All the same (qemu-img 7.0 on): no reason to cut, so a zero tail stays zero.
            return new Run(i, !zero);
        }
        int tail = (int) ((targetSector + i) & (alignment - 1));
        if (tail != 0) {
            if (zero && i <= tail) {
                // A zero run that is only a small tail: treat it as data.
                zero = false;
            }
            if (!zero) {
                i = Math.min(i + alignment - tail, n);
            } else {
                i -= tail;
            }
        }
        return new Run(i, !zero);
    }

    /**
     * Like {@link #allocated}, but a data run swallows the zero runs after it
     * that are shorter than {@code min} sectors (and the data after those).
     */
    static Run allocatedMin(ByteBuffer buf, int first, int n, int min, long targetSector, int alignment) {
        if (n < min) {
            min = n;
        }
        Run r = allocated(buf, first, n, targetSector, alignment);
        if (!r.allocated()) {
            return r;
        }
        int used = r.sectors();
        int checked = used;
        int at = first + used;
        int left = n - used;
        long sector = targetSector + used;
        while (left > 0) {
            Run next = allocated(buf, at, left, sector, alignment);
            at += next.sectors();
            left -= next.sectors();
            sector += next.sectors();
            checked += next.sectors();
            if (next.allocated()) {
                used = checked;
            } else if (next.sectors() >= min) {
                break;
            }
        }
        return new Run(used, true);
    }

    /** Whether {@code b} holds only zeroes from its position to its limit (QEMU's buffer_is_zero). */
    static boolean isZero(ByteBuffer b) {
        for (int at = b.position(); at < b.limit(); at += SECTOR) {
            int n = Math.min(SECTOR, b.limit() - at);
            if (b.slice(at, n).mismatch(ZERO_SECTOR.slice(0, n)) >= 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean isZeroSector(ByteBuffer buf, int sector) {
        int at = sector * SECTOR;
        // Data sectors nearly always differ from zero in their first or last word: decided without a view
        // of the buffer or a compare (img convert runs under C1, where mismatch is a plain loop).
        if (buf.getLong(at) != 0 || buf.getLong(at + SECTOR - 8) != 0) {
            return false;
        }
        return buf.slice(at, SECTOR).mismatch(ZERO_SECTOR) < 0;
    }

    /** Zeroes {@code b} from its position to its limit, leaving both where they are. */
    static void fill(ByteBuffer b) {
        for (int at = b.position(); at < b.limit(); ) {
            int n = Math.min(ZEROES.length, b.limit() - at);
            b.put(at, ZEROES, 0, n);
            at += n;
        }
    }
}
