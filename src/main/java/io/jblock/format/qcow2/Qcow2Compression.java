package io.jblock.format.qcow2;

import com.github.luben.zstd.Zstd;
import io.jblock.block.BlockException;

import java.util.Arrays;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * Encodes and decodes one compressed cluster.
 *
 * <p>Encoding: QEMU reads zlib clusters as raw deflate with a 4 KiB window
 * (inflateInit2 with -12), but java.util.zip.Deflater always compresses with
 * a 32 KiB window. jblock feeds the deflater 4 KiB at a time and ends each
 * piece with a full flush, which resets the compressor's state: no match
 * reaches back past the piece it is in, so every distance is below 4 KiB and
 * QEMU's inflater accepts the stream. zstd clusters are one zstd frame at
 * QEMU's default level (3).
 *
 * <p>Decoding: The stored bytes may run past the real
 * compressed stream (the entry counts whole 512-byte sectors), so both
 * decoders stop when the cluster is full; a stream that does not fill the
 * cluster exactly is corrupt, as QEMU's qcow2_decompress treats it. The output
 * is never larger than one cluster, whatever the input claims.
 */
final class Qcow2Compression {
    private Qcow2Compression() {
    }

    static String name(int type) {
        return switch (type) {
            case Qcow2Header.COMPRESSION_ZLIB -> "zlib";
            case Qcow2Header.COMPRESSION_ZSTD -> "zstd";
            default -> "unknown (" + type + ")";
        };
    }

    /** zlib's window for qcow2, 2^12 bytes: no back reference may reach further. */
    private static final int ZLIB_WINDOW = 4096;
    /** QEMU's zstd level (ZSTD_CLEVEL_DEFAULT). */
    private static final int ZSTD_LEVEL = 3;

    /**
     * The compressed form of one cluster, or null when it would not be smaller
     * than the cluster (QEMU then writes the cluster uncompressed).
     */
    static byte[] compress(int type, byte[] cluster) {
        byte[] out = switch (type) {
            case Qcow2Header.COMPRESSION_ZLIB -> deflate(cluster);
            case Qcow2Header.COMPRESSION_ZSTD -> Zstd.compress(cluster, ZSTD_LEVEL);
            default -> throw new IllegalArgumentException("unknown compression type " + type);
        };
        return out == null || out.length >= cluster.length ? null : out;
    }

    private static byte[] deflate(byte[] in) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        try {
            // Room for a stored worst case plus flush markers; anything that large is refused anyway.
            byte[] out = new byte[in.length + in.length / ZLIB_WINDOW * 16 + 64];
            int n = 0;
            for (int at = 0; at < in.length; at += ZLIB_WINDOW) {
                d.setInput(in, at, Math.min(ZLIB_WINDOW, in.length - at));
                boolean last = at + ZLIB_WINDOW >= in.length;
                if (last) {
                    d.finish();
                    while (!d.finished()) {
                        int got = d.deflate(out, n, out.length - n);
                        if (got == 0 && n == out.length) {
                            return null;
                        }
                        n += got;
                    }
                } else {
                    int got;
                    do {
                        got = d.deflate(out, n, out.length - n, Deflater.FULL_FLUSH);
                        n += got;
                    } while (n < out.length && !d.needsInput());
                    if (n == out.length) {
                        return null;
                    }
                }
            }
            return Arrays.copyOf(out, n);
        } finally {
            d.end();
        }
    }

    /** Fills {@code out} (one cluster) from {@code in[0, inLength)}. */
    static void decompress(int type, byte[] in, int inLength, byte[] out, long guestOffset) throws BlockException {
        boolean ok = switch (type) {
            case Qcow2Header.COMPRESSION_ZLIB -> inflate(in, inLength, out);
            case Qcow2Header.COMPRESSION_ZSTD -> unzstd(in, inLength, out);
            default -> false;
        };
        if (!ok) {
            throw new BlockException.Corrupt("Could not decompress the " + name(type)
                    + " compressed cluster at guest offset " + Qcow2ClusterMap.hex(guestOffset)
                    + ": its data does not decode to exactly one cluster of " + out.length + " bytes");
        }
    }

    /** Raw deflate (no zlib header), as QEMU writes it with a 4 KiB window. */
    private static boolean inflate(byte[] in, int inLength, byte[] out) {
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in, 0, inLength);
            int n = 0;
            while (n < out.length) {
                int got = inflater.inflate(out, n, out.length - n);
                n += got;
                if (got == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
            }
            return n == out.length;
        } catch (DataFormatException e) {
            return false;
        } finally {
            inflater.end();
        }
    }

    /** One or more zstd frames, decoded until the cluster is full. */
    private static boolean unzstd(byte[] in, int inLength, byte[] out) {
        try {
            return unzstdFrames(in, inLength, out);
        } catch (RuntimeException e) { // zstd-jni reports some errors as ZstdException
            return false;
        }
    }

    private static boolean unzstdFrames(byte[] in, int inLength, byte[] out) {
        int inPos = 0;
        int outPos = 0;
        while (outPos < out.length && inPos < inLength) {
            long frame = Zstd.findFrameCompressedSize(in, inPos, inLength - inPos);
            if (Zstd.isError(frame) || frame <= 0 || frame > inLength - inPos) {
                return false;
            }
            long got = Zstd.decompressByteArray(out, outPos, out.length - outPos, in, inPos, (int) frame);
            if (Zstd.isError(got)) {
                return false;
            }
            outPos += (int) got;
            inPos += (int) frame;
        }
        return outPos == out.length;
    }
}
