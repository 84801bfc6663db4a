package io.jblock.block;

/**
 * What a node can do, asked of it rather than guessed, so the drive and the
 * exports adapt: a node without native FUA gets write-then-flush, a node
 * without fast zeroing gets NO_FALLBACK requests refused early, and requests
 * are split and aligned to what the node accepts.
 *
 * @param nativeFua        writes with FUA are durable without a separate flush
 * @param fastZero         write-zeroes is cheaper than writing a zero buffer
 * @param discard          discard can release space
 * @param requestAlignment the smallest unit of offset and length the node accepts (1 = bytes)
 * @param maxTransfer      the largest single request in bytes
 */
public record Capabilities(boolean nativeFua, boolean fastZero, boolean discard,
                           int requestAlignment, int maxTransfer) {
    /** The largest request any node is asked to take at once (as QEMU's BDRV_REQUEST_MAX_BYTES, rounded). */
    public static final int MAX_TRANSFER = 1 << 30;

    public Capabilities {
        if (requestAlignment < 1 || Integer.bitCount(requestAlignment) != 1) {
            throw new IllegalArgumentException("request alignment must be a power of two: " + requestAlignment);
        }
        if (maxTransfer < requestAlignment) {
            throw new IllegalArgumentException("max transfer " + maxTransfer + " below alignment " + requestAlignment);
        }
    }
}
