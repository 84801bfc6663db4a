package io.jblock.cli;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/** Text the QEMU tools print, reproduced to the character: sizes and C's number formats. */
public final class QemuText {
    private static final String[] SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

    private QemuText() {
    }

    /**
     * QEMU's size_to_str: three significant digits in the largest binary unit
     * that keeps the number under 1000 ("512 B", "1 MiB", "0.977 KiB").
     */
    public static String sizeToStr(long val) {
        double v = unsigned(val);
        // frexp's exponent of val * 1024/1000, minus one, is floor(log2) with the switch to the next unit at 1000.
        int e = v == 0 ? 0 : Math.getExponent(v / (1000.0 / 1024.0)) + 1;
        int i = (e - 1) / 10;
        if (i < 0) {
            i = 0;
        }
        double div = Math.scalb(1.0, i * 10);
        return formatG(v / div, 3) + " " + SUFFIXES[i] + "B";
    }

    /** C's {@code %.<precision>g}. */
    public static String formatG(double value, int precision) {
        if (value == 0) {
            return "0";
        }
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            return Double.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
        }
        int p = precision == 0 ? 1 : precision;
        BigDecimal bd = new BigDecimal(value).round(new MathContext(p, RoundingMode.HALF_EVEN));
        int exp = bd.precision() - bd.scale() - 1;
        if (exp < -4 || exp >= p) {
            BigDecimal mantissa = bd.movePointLeft(exp);
            String m = stripZeros(mantissa.setScale(p - 1, RoundingMode.HALF_EVEN).toPlainString());
            return m + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        return stripZeros(bd.setScale(Math.max(0, p - 1 - exp), RoundingMode.HALF_EVEN).toPlainString());
    }

    private static String stripZeros(String s) {
        if (s.indexOf('.') < 0) {
            return s;
        }
        int end = s.length();
        while (s.charAt(end - 1) == '0') {
            end--;
        }
        if (s.charAt(end - 1) == '.') {
            end--;
        }
        return s.substring(0, end);
    }

    private static double unsigned(long v) {
        return v >= 0 ? v : (double) (v >>> 1) * 2.0 + (v & 1);
    }
}
