package io.jblock.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Which image format the first bytes of a file announce, as QEMU 7.2's
 * probes see them (every format qemu-img lists that probes by content, not
 * only those jblock can open): the rule a probed raw node enforces so that
 * its image can never start to probe as something else.
 *
 * <p>The rules were learned by writing candidate headers to a probed raw
 * image with qemu-io 7.2 and seeing which it refuses ({@code ProbedRawCompatTest}
 * keeps them compared):
 * <pre>
 *   qcow, qcow2  "QFI\xfb", then version (u32 BE): 1 qcow, 2 and up qcow2, 0 raw
 *   vpc          "conectix"
 *   vhdx         "vhdxfile"
 *   qed          "QED\0"
 *   vmdk         "COWD" or "KDMV"; or a descriptor: lines starting '#', then
 *                "version=1", "=2" or "=3" ending in "\n" or "\r\n"
 *   vdi          u32 LE 0xbeda107f at byte 64
 *   luks         "LUKS\xba\xbe", then version (u16 BE) 1 or 2
 *   parallels    "WithoutFreeSpace" or "WithouFreSpacExt", then version (u32 LE) 2
 *   bochs        C strings "Bochs Virtual HD Image" (field of 32 bytes),
 *                "Redolog" (16), "Growing" (16), then version (u32 LE) 0x10000 or 0x20000
 * </pre>
 * dmg probes by file name only, cloop's probe never matched in these runs.
 */
final class FormatSignatures {
    /** QEMU's BLOCK_PROBE_BUF_SIZE: how many bytes a format probe reads. */
    static final int PROBE_SIZE = 512;

    private static final int VDI_SIGNATURE = 0xbeda107f;
    private static final int VDI_SIGNATURE_OFFSET = 64;

    private FormatSignatures() {
    }

    /** The format {@code head} (the first bytes of an image) would probe as, or null for raw. */
    static String formatOf(byte[] head) {
        ByteBuffer be = ByteBuffer.wrap(head).order(ByteOrder.BIG_ENDIAN);
        ByteBuffer le = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
        if (startsWith(head, 0, "QFI\u00fb") && head.length >= 8) {
            int version = be.getInt(4);
            if (version == 1) {
                return "qcow";
            }
            if (Integer.compareUnsigned(version, 2) >= 0) {
                return "qcow2";
            }
        }
        if (startsWith(head, 0, "conectix")) {
            return "vpc";
        }
        if (startsWith(head, 0, "vhdxfile")) {
            return "vhdx";
        }
        if (startsWith(head, 0, "QED\0")) {
            return "qed";
        }
        if (startsWith(head, 0, "COWD") || startsWith(head, 0, "KDMV") || isVmdkDescriptor(head)) {
            return "vmdk";
        }
        if (head.length >= VDI_SIGNATURE_OFFSET + 4 && le.getInt(VDI_SIGNATURE_OFFSET) == VDI_SIGNATURE) {
            return "vdi";
        }
        if (startsWith(head, 0, "LUKS\u00ba\u00be") && head.length >= 8) {
            short version = be.getShort(6);
            if (version == 1 || version == 2) {
                return "luks";
            }
        }
        if ((startsWith(head, 0, "WithoutFreeSpace") || startsWith(head, 0, "WithouFreSpacExt"))
                && head.length >= 20 && le.getInt(16) == 2) {
            return "parallels";
        }
        if (isBochs(head, le)) {
            return "bochs";
        }
        return null;
    }

    /** A vmdk text descriptor: comment lines, then a version line. */
    private static boolean isVmdkDescriptor(byte[] head) {
        int p = 0;
        while (p < head.length && head[p] == '#') {
            while (p < head.length && head[p] != '\n') {
                p++;
            }
            p++;
        }
        for (String line : new String[] {"version=1", "version=2", "version=3"}) {
            if (startsWith(head, p, line + "\n") || startsWith(head, p, line + "\r\n")) {
                return true;
            }
        }
        return false;
    }

    private static boolean isBochs(byte[] head, ByteBuffer le) {
        if (head.length < 68) {
            return false;
        }
        int version = le.getInt(64);
        return cString(head, 0, 32, "Bochs Virtual HD Image") && cString(head, 32, 16, "Redolog")
                && cString(head, 48, 16, "Growing") && (version == 0x10000 || version == 0x20000);
    }

    /** Whether the NUL-terminated string in the field at {@code at} is {@code s}. */
    private static boolean cString(byte[] head, int at, int field, String s) {
        return startsWith(head, at, s + "\0") && s.length() < field;
    }

    private static boolean startsWith(byte[] head, int at, String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        return at >= 0 && head.length - at >= b.length && Arrays.equals(head, at, at + b.length, b, 0, b.length);
    }
}
