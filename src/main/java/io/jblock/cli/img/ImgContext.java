package io.jblock.cli.img;

import java.io.InputStream;
import java.io.PrintStream;

/**
 * The streams and program name one run of the img tool writes to, with
 * qemu-img's three ways of complaining: an error ("qemu-img: msg"), a
 * usage error that also points at --help and exits, and a warning.
 *
 * @param prog the name messages start with: "qemu-img", or "jblock img"
 */
record ImgContext(String prog, InputStream in, PrintStream out, PrintStream err) {
    /** "prog: msg" on stderr (qemu's error_report). */
    void error(String message) {
        err.print(prog + ": " + message + "\n");
    }

    /** "prog: warning: msg" on stderr (qemu's warn_report). */
    void warn(String message) {
        err.print(prog + ": warning: " + message + "\n");
    }

    /** qemu-img's error_exit: the message, the pointer to --help, exit status 1. */
    ImgExit usageError(String message) {
        err.print(prog + ": " + message + "\nTry '" + prog + " --help' for more information\n");
        return new ImgExit(1);
    }

    /** Prints an error and returns the exit to throw, status 1. */
    ImgExit fail(String message) {
        error(message);
        return new ImgExit(1);
    }
}
