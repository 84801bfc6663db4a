package io.jblock.cli.io;

import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * What qemu-io prints, to the character: its own size format (cvtstr, which
 * is not qemu-img's size_to_str), its elapsed-time format, the statistics
 * lines after an I/O, and the hex dump of {@code read -v}.
 */
final class IoText {
    private static final String[] UNITS = {" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"};

    private IoText() {
    }

    /**
     * qemu-io's cvtstr: three decimals in the largest binary unit not above
     * the value, six for plain bytes, and the first ".000" cut away with
     * everything after it ("4 KiB", "1.500 KiB", "0.500000 bytes").
     */
    static String cvtstr(double value) {
        String number;
        String suffix = " bytes";
        number = null;
        for (int i = 0; i < UNITS.length; i++) {
            double unit = Math.scalb(1.0, 60 - 10 * i);
            if (value >= unit) {
                number = fixed(value / unit, 3);
                suffix = UNITS[i];
                break;
            }
        }
        if (number == null) {
            number = fixed(value, 6);
        }
        int cut = number.indexOf(".000");
        return cut >= 0 ? number.substring(0, cut) + suffix : number + suffix;
    }

    /** C's {@code %.Nf}: the exact binary value rounded half to even, and glibc's inf/nan spellings. */
    static String fixed(double v, int decimals) {
        if (Double.isNaN(v)) {
            return "-nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        return new BigDecimal(v).setScale(decimals, RoundingMode.HALF_EVEN).toPlainString();
    }

    /**
     * qemu-io's timestr: "SS.ss sec" under a second, else "H:MM:SS.ss";
     * {@code verbose} (the -C format) always uses the long form.
     */
    static String timestr(long nanos, boolean verbose) {
        long sec = nanos / 1_000_000_000L;
        double frac = (nanos % 1_000_000_000L) / 1e9;
        if (verbose || sec != 0) {
            return (sec / 3600) + ":" + pad2(sec % 3600 / 60) + ":" + zeroPadded(sec % 60 + frac);
        }
        return zeroPadded(frac) + " sec";
    }

    /** C's {@code %05.2f}. */
    private static String zeroPadded(double v) {
        String s = fixed(v, 2);
        return s.length() < 5 ? "0".repeat(5 - s.length()) + s : s;
    }

    private static String pad2(long v) {
        return v < 10 ? "0" + v : Long.toString(v);
    }

    /** Rate per second over {@code nanos}, as qemu-io's tdiv (division by zero gives inf, as in C). */
    static double perSecond(double value, long nanos) {
        return value / (nanos / 1e9);
    }

    /**
     * The two lines after a successful I/O ("wrote 4096/4096 bytes at offset 0"
     * and the statistics), or the one machine-readable line with -C.
     */
    static void report(PrintStream out, String op, long nanos, long offset, long count, long total, int ops,
                       boolean machine) {
        String ts = timestr(nanos, machine);
        if (!machine) {
            out.print(op + " " + total + "/" + count + " bytes at offset " + offset + "\n");
            out.print(cvtstr(total) + ", " + ops + " ops; " + ts + " (" + cvtstr(perSecond(total, nanos))
                    + "/sec and " + fixed(perSecond(ops, nanos), 4) + " ops/sec)\n");
        } else {
            out.print(total + "," + ops + "," + ts + "," + fixed(perSecond(total, nanos), 3) + ","
                    + fixed(perSecond(ops, nanos), 3) + "\n");
        }
    }

    /** {@code read -v}: 16 bytes a line, offset in hex, bytes in hex, then letters and digits as themselves. */
    static void dump(PrintStream out, byte[] buf, int from, long offset, int len) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < len; i += 16) {
            String off = Long.toHexString(offset + i);
            sb.setLength(0);
            sb.append("0".repeat(Math.max(0, 8 - off.length()))).append(off).append(":  ");
            int n = Math.min(16, len - i);
            for (int j = 0; j < n; j++) {
                int b = buf[from + i + j] & 0xff;
                sb.append(Character.forDigit(b >> 4, 16)).append(Character.forDigit(b & 15, 16)).append(' ');
            }
            sb.append(' ');
            for (int j = 0; j < n; j++) {
                char c = (char) (buf[from + i + j] & 0xff);
                boolean alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                sb.append(alnum ? c : '.');
            }
            sb.append('\n');
            out.print(sb);
        }
    }
}
