package io.jblock.format.qcow2;

import com.github.luben.zstd.Zstd;
import io.jblock.block.BlockException;

import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Decodes one compressed cluster. The stored bytes may run past the real
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
