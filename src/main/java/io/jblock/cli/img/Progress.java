package io.jblock.cli.img;

import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * qemu-img's {@code -p}: "    (NN.NN/100%)" followed by a carriage return
 * on stdout, reprinted when the figure moved by more than a step since the
 * last print, and always at 0 and 100; a newline at the end. The figure is
 * a C float, as QEMU keeps it, so the same steps print the same text.
 */
final class Progress {
    private final PrintStream out;
    private final boolean enabled;
    private final float minSkip;
    private float current;
    private float lastPrint;

    /** @param minSkip how far, in percent, the figure must move before it is printed again */
    Progress(PrintStream out, boolean enabled, float minSkip) {
        this.out = out;
        this.enabled = enabled;
        this.minSkip = minSkip;
    }

    /** Whether the figure is printed at all (-p, and not -q). */
    boolean enabled() {
        return enabled;
    }

    /**
     * With {@code max} 0, sets the figure to {@code delta}; otherwise adds
     * {@code delta} percent of {@code max} (QEMU's qemu_progress_print).
     */
    synchronized void print(float delta, int max) {
        float next = max == 0 ? delta : current + delta / 100 * max;
        if (next > 100) {
            next = 100;
        }
        current = next;
        if (!enabled) {
            return;
        }
        if (next > lastPrint + minSkip || next < lastPrint - minSkip || next == 0 || next == 100) {
            lastPrint = next;
            out.print("    (" + twoDecimals(next) + "/100%)\r");
            out.flush();
        }
    }

    /** The line's end, once the command is done. */
    synchronized void end() {
        if (enabled) {
            out.print("\n");
            out.flush();
        }
    }

    /** C's {@code %3.2f} of a float: its exact binary value, ties to even. */
    static String twoDecimals(float f) {
        return new BigDecimal(f).setScale(2, RoundingMode.HALF_EVEN).toPlainString();
    }
}
